"""The TF1 legacy bilinear resize against a per-pixel numpy version, torch's grid_sample, and jax.image.resize."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mat_jax.data.demo_data import demo_images
from mat_jax.eval.resize import resize_legacy_bilinear


def _numpy_legacy(img_HxWxC, out_h, out_w):
    """Per output pixel, written from the definition: src = dst · in / out, floor / floor + 1 (clamped), lerp."""
    h, w, _ = img_HxWxC.shape
    x = img_HxWxC.astype(np.float64)
    out = np.zeros((out_h, out_w, x.shape[2]))
    for i in range(out_h):
        sy = i * h / out_h
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for j in range(out_w):
            sx = j * w / out_w
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = x[y0, x0] * (1 - fx) + x[y0, x1] * fx
            bottom = x[y1, x0] * (1 - fx) + x[y1, x1] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out


@pytest.fixture(scope="module")
def photo():
    return demo_images(("astronaut",))["astronaut"]


@pytest.mark.parametrize("in_hw,out_hw", [((64, 48), (29, 31)), ((20, 17), (29, 31)), ((37, 37), (37, 12))])
def test_resize_equals_the_numpy_definition(photo, in_hw, out_hw):
    img = photo[100 : 100 + in_hw[0], 200 : 200 + in_hw[1]]
    got = np.asarray(resize_legacy_bilinear(img[None], out_hw))[0]
    np.testing.assert_allclose(got, _numpy_legacy(img, *out_hw), atol=2e-4, rtol=0)


@pytest.mark.parametrize("hw", [(400, 160), (512, 512)])  # shrink rows and enlarge columns; MAT's 512
def test_resize_to_299_equals_torch_grid_sample_as_nvidia_does(photo, hw):
    torch = pytest.importorskip("torch")
    img = np.array(photo[: hw[0], : hw[1]])
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    theta = torch.eye(2, 3)
    theta[0, 2] += theta[0, 0] / x.shape[3] - theta[0, 0] / 299
    theta[1, 2] += theta[1, 1] / x.shape[2] - theta[1, 1] / 299
    grid = torch.nn.functional.affine_grid(theta[None], [1, 3, 299, 299], align_corners=False)
    ref = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    got = np.asarray(resize_legacy_bilinear(img[None]))
    # torch builds the sample positions in float32 (~1e-5 px off): 0.0046 / 255 seen, hence 0.01
    np.testing.assert_allclose(got[0], ref[0].permute(1, 2, 0).numpy(), atol=0.01, rtol=0)


def test_resize_differs_from_jax_image_resize(photo):
    img = photo[:512, :512]
    ours = np.asarray(resize_legacy_bilinear(img[None]))[0]
    theirs = np.asarray(jax.image.resize(img[None].astype(np.float32), (1, 299, 299, 3), "bilinear"))[0]
    assert np.abs(ours - theirs).max() > 20  # different filters, not rounding
    same = np.asarray(resize_legacy_bilinear(img[None, :299, :299]))[0]
    np.testing.assert_array_equal(same, img[:299, :299].astype(np.float32))  # identity at 299
