"""`mat-jax inpaint` and `mat_jax.api.load_inpainter` end to end on a tiny checkpoint directory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_configs import TINY
from PIL import Image

from mat_jax import cli
from mat_jax.api import load_inpainter
from mat_jax.convert.orbax_dir import load_variables, save_variables
from mat_jax.data.demo_data import demo_images
from mat_jax.data.masks_extra import make_mask
from mat_jax.models import Generator


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    variables = jax.jit(Generator(TINY).init)(
        keys, jnp.zeros((1, 64, 64, 3)), jnp.ones((1, 64, 64, 1)), jnp.zeros((1, TINY.z_dim))
    )
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_variables(path, {"G_ema": variables}, TINY)
    return path, variables


def _photo(name, w, h):
    return np.asarray(Image.fromarray(demo_images((name,))[name]).resize((w, h), Image.BICUBIC))


def _write_pair(folder, stem, w, h, seed, invert=False):
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "mask").mkdir(parents=True, exist_ok=True)
    image = _photo("coffee", w, h)
    known = make_mask("boxes", 64, seed=seed)[:h, :w, 0] >= 0.5  # generated mask, cropped to the image
    known[h // 3 : h // 2, w // 4 : 3 * w // 4] = False  # and at least one hole whatever the crop
    Image.fromarray(image).save(folder / "img" / f"{stem}.png")
    white = ~known if invert else known
    Image.fromarray(np.where(white, 255, 0).astype(np.uint8)).save(folder / "mask" / f"{stem}.png")
    return image, known


def test_directory_round_trip(tiny_ckpt):
    path, variables = tiny_ckpt
    cfg, nets = load_variables(path)
    assert cfg == TINY and list(nets) == ["G_ema"]
    for a, b in zip(jax.tree.leaves(nets["G_ema"]), jax.tree.leaves(variables), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_inpaint_non_square_sizes_keep_known_pixels(tiny_ckpt, tmp_path):
    path, _ = tiny_ckpt
    a = _write_pair(tmp_path, "a", 50, 37, seed=1)  # non-square, not a multiple of anything
    b = _write_pair(tmp_path, "b", 23, 61, seed=2)
    out = tmp_path / "out"
    rc = cli.main(
        [
            "inpaint",
            "--checkpoint",
            str(path),
            "--image",
            str(tmp_path / "img"),
            "--mask",
            str(tmp_path / "mask"),
            "--output",
            str(out),
            "--num-samples",
            "2",
            "--seed",
            "3",
        ]
    )
    assert rc == 0
    for stem, (image, known) in (("a", a), ("b", b)):
        s0 = np.asarray(Image.open(out / f"{stem}_0.png"))
        s1 = np.asarray(Image.open(out / f"{stem}_1.png"))
        assert s0.shape == image.shape
        np.testing.assert_array_equal(s0[known], image[known])
        np.testing.assert_array_equal(s1[known], image[known])
        assert (~known).any() and np.abs(s0[~known].astype(int) - s1[~known]).max() > 0  # pluralistic
    assert (out / "overview" / "grid.png").is_file()


def test_inpainted_folder_evaluates_against_its_inputs(tiny_ckpt, tmp_path, capsys):
    """The seam inpaint -> eval-folders: one sample per image, the output folder pairs with the inputs by name."""
    import json

    path, _ = tiny_ckpt
    _write_pair(tmp_path, "a", 50, 37, seed=1)
    _write_pair(tmp_path, "b", 23, 61, seed=2)
    out, img = tmp_path / "out", tmp_path / "img"
    argv = ["inpaint", "--checkpoint", str(path), "--image", str(img), "--mask", str(tmp_path / "mask")]
    assert cli.main([*argv, "--output", str(out)]) == 0
    assert (out / "overview" / "grid.png").is_file()
    report = tmp_path / "report.json"
    assert cli.main(["eval-folders", str(out), str(img), "--out", str(report), "--no-progress"]) == 0
    rep = json.loads(report.read_text())
    assert rep["num_images"] == 2 and rep["psnr"] is not None and rep["psnr"] > 0


def test_inpaint_lama_convention_and_single_file(tiny_ckpt, tmp_path):
    path, _ = tiny_ckpt
    image, known = _write_pair(tmp_path, "c", 40, 30, seed=4, invert=True)
    out = tmp_path / "c_out.png"
    rc = cli.main(
        [
            "inpaint",
            "--checkpoint",
            str(path),
            "--image",
            str(tmp_path / "img" / "c.png"),
            "--mask",
            str(tmp_path / "mask" / "c.png"),
            "--output",
            str(out),
            "--mask-convention",
            "lama",
        ]
    )
    assert rc == 0
    res = np.asarray(Image.open(out))
    np.testing.assert_array_equal(res[known], image[known])


def test_inpaint_errors_leave_no_output(tiny_ckpt, tmp_path, capsys):
    path, _ = tiny_ckpt
    _write_pair(tmp_path, "d", 40, 30, seed=5)
    Image.fromarray(np.zeros((31, 40), np.uint8)).save(tmp_path / "mask" / "d.png")  # wrong size
    out = tmp_path / "out"
    rc = cli.main(
        [
            "inpaint",
            "--checkpoint",
            str(path),
            "--image",
            str(tmp_path / "img"),
            "--mask",
            str(tmp_path / "mask"),
            "--output",
            str(out),
        ]
    )
    assert rc == 1 and "is 40x31 but image" in capsys.readouterr().err and not out.exists()
    big = tmp_path / "big"
    _write_pair(big, "e", 64, 64, seed=6)
    Image.fromarray(_photo("rocket", 90, 70)).save(big / "img" / "e.png")
    Image.fromarray(np.full((70, 90), 255, np.uint8)).save(big / "mask" / "e.png")
    for extra in ([], ["--resize"]):  # padded to 128x128 (2x the tiny model), or resized to 64x64
        rc = cli.main(
            [
                "inpaint",
                "--checkpoint",
                str(path),
                "--image",
                str(big / "img"),
                "--mask",
                str(big / "mask"),
                "--output",
                str(big / "o.png"),
                *extra,
            ]
        )
        assert rc == 0 and np.asarray(Image.open(big / "o.png")).shape == (70, 90, 3)
    assert "using random noise" in capsys.readouterr().err
    rc = cli.main(
        [
            "inpaint",
            "--checkpoint",
            str(tmp_path / "nothing"),
            "--image",
            str(big / "img"),
            "--mask",
            str(big / "mask"),
            "--output",
            str(tmp_path / "x.png"),
        ]
    )
    assert rc == 1 and not (tmp_path / "x.png").exists()


def test_non_binary_mask_warns_and_thresholds(tiny_ckpt, tmp_path):
    path, _ = tiny_ckpt
    image, known = _write_pair(tmp_path, "f", 32, 32, seed=7)
    soft = np.where(known, 200, 40).astype(np.uint8)  # anti-aliased-looking values
    Image.fromarray(soft).save(tmp_path / "mask" / "f.png")
    with pytest.warns(UserWarning, match="not binary"):
        rc = cli.main(
            [
                "inpaint",
                "--checkpoint",
                str(path),
                "--image",
                str(tmp_path / "img" / "f.png"),
                "--mask",
                str(tmp_path / "mask" / "f.png"),
                "--output",
                str(tmp_path / "f.png"),
            ]
        )
    assert rc == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f.png"))[known], image[known])


def test_api_loader_is_callable(tiny_ckpt):
    path, _ = tiny_ckpt
    inp = load_inpainter(path)
    x = np.zeros((1, 64, 64, 3), np.float32)
    m = np.ones((1, 64, 64, 1), np.float32)
    m[:, 10:30, 10:30] = 0
    final, stage1 = inp(x, m, seed=0)
    assert final.shape == stage1.shape == (1, 64, 64, 3)
    with pytest.raises(ValueError, match="G_ema' or 'G"):
        load_inpainter(path, net="D")
