"""The `mat-jax serve` page in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright's Python
package; never `playwright install`) brushes a mask, undoes and redoes it, asks for K=3 fills, checks them pixel by
pixel, downloads one, and sees errors on the page. `.ci/run` installs chromium when it is missing.

MAT_JAX_WRITE_SCREENSHOT=docs/serve.png also writes the K=3 screenshot there (how docs/serve.png was made)."""

from __future__ import annotations

import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image
from serve_helpers import decode_png_b64, photo, running_server, tiny_inpainter

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium executable on PATH (apt-get install chromium; .ci/run does it in CI)"
)
SIDE = 64  # the tiny model's native square: the shapes the server compiled at startup

PAINTED_ALPHA = """() => {
  const c = document.getElementById('canvas');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 3));
}"""


@pytest.fixture(scope="module")
def base_url():
    with running_server(tiny_inpainter(), max_side=1024) as (url, _):  # the demo photos are 400-600 px
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, base_url):
    page = browser.new_page(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url)
    page.wait_for_function("document.getElementById('info').textContent.includes('64px model')")
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _painted(page) -> np.ndarray:
    """[H, W] bool of the brushed pixels (= hole), read back from the mask canvas."""
    alpha = np.asarray(page.evaluate(PAINTED_ALPHA), np.uint8)
    return alpha.reshape(SIDE, SIDE) > 0


def _painted_count(page) -> int:
    return int((np.asarray(page.evaluate(PAINTED_ALPHA)) > 0).sum())


def _stroke(page, frm, to):
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + frm[0] * box["width"], box["y"] + frm[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + to[0] * box["width"], box["y"] + to[1] * box["height"], steps=8)
    page.mouse.up()


def _open(page, tmp_path, image) -> pathlib.Path:
    path = tmp_path / "input.png"
    Image.fromarray(image).save(path)
    page.set_input_files("#file", str(path))
    page.wait_for_function("!document.getElementById('stage').classList.contains('empty')")
    return path


def test_brush_undo_inpaint_compare_download(page, tmp_path):
    image = photo(SIDE, SIDE)
    _open(page, tmp_path, image)
    page.fill("#brush", "40")  # display px; the 64 px image is shown 4x
    page.dispatch_event("#brush", "input")
    _stroke(page, (0.3, 0.5), (0.7, 0.5))
    first = _painted(page)
    assert 100 < first.sum() < SIDE * SIDE // 2 and first[SIDE // 2, SIDE // 2]
    page.click("#undo")
    assert _painted(page).sum() == 0
    page.keyboard.press("Control+Shift+Z")  # redo
    np.testing.assert_array_equal(_painted(page), first)
    page.keyboard.press("Control+Z")
    assert _painted(page).sum() == 0
    _stroke(page, (0.5, 0.25), (0.5, 0.75))  # a new, vertical stroke
    hole = _painted(page)
    assert hole.sum() > 100 and hole[SIDE // 2, SIDE // 2] and not hole[SIDE // 2, 2]

    page.fill("#k", "3")
    page.fill("#seed", "5")
    page.click("#inpaint")
    page.wait_for_function("document.querySelectorAll('#results img').length === 3", timeout=180_000)
    assert page.locator("#progress").is_hidden() and page.locator("#error").is_hidden()
    srcs = page.eval_on_selector_all("#results img", "els => els.map(e => e.src)")
    fills = [decode_png_b64(s) for s in srcs]
    for f in fills:
        assert f.shape == (SIDE, SIDE, 3)
        np.testing.assert_array_equal(f[~hole], image[~hole])  # known pixels untouched
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert np.abs(fills[a][hole].astype(int) - fills[b][hole]).mean() > 1  # three different fills
    assert page.eval_on_selector_all("#results img", "els => els.map(e => e.dataset.seed)") == ["5", "6", "7"]

    shot = page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("MAT_JAX_WRITE_SCREENSHOT"):
        pathlib.Path(os.environ["MAT_JAX_WRITE_SCREENSHOT"]).write_bytes(shot)

    first_img = page.locator("#results img").first
    first_img.hover()
    page.mouse.down()  # press and hold: the original
    assert decode_png_b64(first_img.get_attribute("src")).tolist() == image.tolist()
    page.mouse.up()
    assert first_img.get_attribute("src") == srcs[0]

    with page.expect_download() as dl:
        page.locator("#results figure").nth(1).locator("a.download").click()
    saved = tmp_path / "download.png"
    dl.value.save_as(saved)
    with Image.open(saved) as im:
        assert im.format == "PNG" and im.size == (SIDE, SIDE)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), fills[1])
    with page.expect_download() as dl:
        page.click("#download-mask")
    dl.value.save_as(tmp_path / "mask.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "mask.png").convert("L")) == 255, hole)

    page.locator("#results figure").nth(2).locator("button.use").click()  # keep editing the third fill
    page.wait_for_function("document.getElementById('undo').disabled")
    assert _painted(page).sum() == 0


def test_errors_show_on_the_page(page, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a PNG")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    assert "cannot open broken.png" in page.inner_text("#error")
    _open(page, tmp_path, photo(SIDE, SIDE))
    assert page.locator("#error").is_hidden()
    page.select_option("#demo", label="coffee")  # a bundled demo photo (400x600)
    page.wait_for_function("document.getElementById('canvas').width === 600")
    assert page.locator("#error").is_hidden() and _painted_count(page) == 0
    _stroke(page, (0.4, 0.4), (0.6, 0.6))
    assert _painted_count(page) > 0
    page.fill("#k", "9")  # beyond the range: the server refuses it, naming the field
    page.click("#inpaint")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    text = page.inner_text("#error")
    assert "k:" in text and "1..8" in text and page.locator("#results img").count() == 0
    assert page.locator("#progress").is_hidden() and page.locator("#inpaint").is_enabled()
