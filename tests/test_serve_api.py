"""`mat-jax serve`'s JSON API over real HTTP (no browser): info, K batched fills, determinism, one code path with the
library, and every bad input refused with a 400 naming its field while the server keeps serving."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from serve_helpers import decode_png_b64, hole, photo, png_b64, request, running_server, tiny_inpainter

from mat_jax import cli
from mat_jax.fit import inpaint_variants
from mat_jax.serve import app

W, H = 45, 37  # not a multiple of the 64 px grid: exercises pad-to-grid and the crop back


@pytest.fixture(scope="module")
def served():
    inpainter = tiny_inpainter()
    with running_server(inpainter) as (url, log):
        yield url, log, inpainter


@pytest.fixture(scope="module")
def pair():
    image, hole_HxW = photo(W, H), hole(W, H)
    mask_png = np.where(hole_HxW, 255, 0).astype(np.uint8)  # white = hole, as the page paints it
    return image, hole_HxW, {"image": png_b64(image), "mask": png_b64(mask_png)}


def test_info_and_startup_log(served):
    url, log, inpainter = served
    status, info = request(url + "api/info")
    assert status == 200
    assert info["resolution"] == 64 and info["c_dim"] == 0 and info["checkpoint"] == inpainter.source
    assert info["device"] == "cpu (tests)" and info["max_side"] == 256 and info["k_range"] == [1, 8]
    assert any("compiling 64x64, K=1" in line for line in log) and any(f"K={app.DEFAULT_K}" in line for line in log)


def test_k_fills_keep_known_pixels_and_differ_in_the_hole(served, pair):
    url, _, inpainter = served
    image, hole_HxW, files = pair
    status, out = request(url + "api/inpaint", {**files, "k": 3, "seed": 11})
    assert status == 200 and out["seeds"] == [11, 12, 13] and len(out["images"]) == 3
    fills = [decode_png_b64(b) for b in out["images"]]
    for f in fills:
        assert f.shape == (H, W, 3) and f.dtype == np.uint8
        np.testing.assert_array_equal(f[~hole_HxW], image[~hole_HxW])  # known pixels: the input, bit for bit
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert np.abs(fills[a][hole_HxW].astype(int) - fills[b][hole_HxW]).mean() > 1  # pluralistic
    status, again = request(url + "api/inpaint", {**files, "k": 3, "seed": 11})
    assert status == 200 and again["images"] == out["images"]  # same request, same PNGs
    # one code path: the library's pad-to-grid path with the same inputs and seeds gives the same pixels
    lib = inpaint_variants(inpainter, image, (~hole_HxW).astype(np.float32)[..., None], [11, 12, 13])
    for f, g in zip(fills, lib.images, strict=True):
        np.testing.assert_array_equal(f, g)
    # variant i depends on its own seed only: K=1 with seed 12 is (up to float batching) the middle fill above
    status, one = request(url + "api/inpaint", {**files, "k": 1, "seed": 12})
    assert status == 200 and one["seeds"] == [12]
    assert np.abs(decode_png_b64(one["images"][0]).astype(int) - fills[1]).max() <= 1


def test_data_url_prefix_and_jpeg_are_accepted(served, pair):
    url, _, _ = served
    image, hole_HxW, files = pair
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    jpeg = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    status, out = request(url + "api/inpaint", {"image": jpeg, "mask": "data:image/png;base64," + files["mask"]})
    assert status == 200 and decode_png_b64(out["images"][0]).shape == (H, W, 3)


def _bad_cases(files):
    big = png_b64(np.zeros((300, 20, 3), np.uint8))  # over max_side=256
    small_mask = png_b64(np.zeros((H - 1, W), np.uint8))
    return [
        ({**files, "image": "not base64 !!"}, "image", "base64"),
        ({**files, "image": base64.b64encode(b"hello, not an image").decode()}, "image", "not an image"),
        ({"mask": files["mask"]}, "image", "required"),
        ({**files, "mask": small_mask}, "mask", f"mask is {W}x{H - 1} but the image is {W}x{H}"),
        ({**files, "mask": 7}, "mask", "base64 string"),
        ({"image": big, "mask": png_b64(np.zeros((300, 20), np.uint8))}, "image", "up to 256"),
        ({**files, "k": 0}, "k", "1..8"),
        ({**files, "k": 9}, "k", "1..8"),
        ({**files, "k": "3"}, "k", "integer"),
        ({**files, "seed": 1.5}, "seed", "integer"),
        ({**files, "seed": "x"}, "seed", "integer"),
        ({**files, "truncation_psi": "high"}, "truncation_psi", "number"),
        ({**files, "noise_mode": "loud"}, "noise_mode", "const, random, none"),
        ({**files, "label": 1}, "label", "unconditional"),
        ({**files, "colour": 1}, "colour", "unknown field"),
    ]


def _announce_huge_body(url: str):
    """A POST whose Content-Length is over the limit: refused from the header, before any body is sent."""
    import http.client
    import json
    import urllib.parse

    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.putrequest("POST", "/api/inpaint")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(app.MAX_BODY_BYTES + 1))
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_every_bad_input_is_a_400_naming_its_field(served, pair):
    url, _, _ = served
    _, _, files = pair
    for body, field, words in _bad_cases(files):
        status, out = request(url + "api/inpaint", body)
        assert status == 400, (field, out)
        assert out["field"] == field and words in out["error"], (field, out)
    for raw, words in ((b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object")):
        status, out = request(url + "api/inpaint", raw)
        assert status == 400 and out["field"] == "body" and words in out["error"]
    status, out = _announce_huge_body(url)
    assert status == 413 and out["field"] == "body" and "limit" in out["error"]
    status, out = request(url + "api/nothing-here")
    assert status == 404 and "no such path" in out["error"]
    status, out = request(url + "api/elsewhere", {"k": 1})
    assert status == 404
    status, out = request(url + "api/inpaint", {**files, "k": 1})  # still serving
    assert status == 200 and len(out["images"]) == 1


def test_page_static_files_and_demo_photos(served):
    import urllib.request

    url, _, _ = served
    with urllib.request.urlopen(url) as resp:
        page = resp.read().decode()
    for needed in ('id="canvas"', 'id="k"', 'id="seed"', 'id="inpaint"', 'id="results"', 'id="error"', 'id="undo"'):
        assert needed in page
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
        with urllib.request.urlopen(url + "static/" + name) as resp:
            assert kind in resp.headers["Content-Type"] and len(resp.read()) > 500
    status, out = request(url + "static/../app.py")
    assert status == 404
    status, photos = request(url + "api/demo-photos")
    assert status == 200 and "coffee" in [p["name"] for p in photos["photos"]]
    first = photos["photos"][0]
    with urllib.request.urlopen(url + first["url"].lstrip("/")) as resp:
        im = Image.open(io.BytesIO(resp.read()))
        assert im.format == "PNG" and im.mode == "RGB" and min(im.size) > 64


def test_serve_command_without_a_demo_run_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no runs/demo here
    assert cli.main(["serve", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "runs/demo holds no complete checkpoint" in err and "mat-jax train --config configs/demo.py" in err
    assert cli.main(["serve", "--checkpoint", str(tmp_path / "missing.pkl")]) == 1
    assert cli.main(["serve", "--checkpoint", "x", "--max-side", "0"]) == 2


def test_page_files_are_package_data():
    """A non-editable install ships the page: pyproject's package-data globs cover every file in serve/static."""
    import fnmatch
    import pathlib
    import tomllib

    repo = pathlib.Path(__file__).resolve().parents[1]
    globs = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mat_jax.serve"]
    static = sorted((repo / "mat_jax" / "serve" / "static").iterdir())
    assert {p.suffix for p in static} == {".html", ".js", ".css"}
    for p in static:
        assert any(fnmatch.fnmatch(f"static/{p.name}", g) for g in globs), p


def test_label_of_a_class_conditional_checkpoint(pair):
    _, _, files = pair
    req = app.parse_request({**files, "label": 2}, c_dim=3, max_side=256)
    np.testing.assert_array_equal(req.c_1xC, [[0, 0, 1]])
    for body, words in (
        (files, r"class-conditional \(c_dim=3\): pass label N"),
        ({**files, "label": 3}, r"outside \[0, 3\)"),
        ({**files, "label": "cat"}, "integer"),
    ):
        with pytest.raises(app.RequestError, match=words) as e:
            app.parse_request(body, c_dim=3, max_side=256)
        assert e.value.field == "label"


def test_concurrent_requests_are_serialised_and_each_gets_its_own_answer(served, pair):
    """Four clients at once (the ThreadingHTTPServer answers each in its own thread; model calls take one lock):
    every response is the one that request gets alone, and a bad request among them is still its own 400."""
    import concurrent.futures

    url, _, _ = served
    _, _, files = pair
    bodies = [{**files, "k": 2, "seed": s} for s in (101, 202, 303)] + [{**files, "k": 99}]
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: request(url + "api/inpaint", b), bodies))
    for body, (status, out) in zip(bodies[:3], answers[:3], strict=True):
        assert status == 200 and out["seeds"] == [body["seed"], body["seed"] + 1]
        assert request(url + "api/inpaint", body)[1]["images"] == out["images"]
    assert answers[3][0] == 400 and answers[3][1]["field"] == "k"
