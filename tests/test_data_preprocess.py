"""Decoding (all PIL modes -> RGB) and the official crop / pad / value-range policy."""

import io

import numpy as np
import pytest
from PIL import Image

from mat_jax.data import preprocess


def _png(arr, mode=None):
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def test_decode_converts_every_mode_to_rgb():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((9, 7, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(preprocess.decode_image(_png(rgb)), rgb)
    np.testing.assert_array_equal(preprocess.decode_image(_png(gray)), np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(preprocess.decode_image(_png(rgba)), rgb)  # alpha dropped, not blended
    pal = Image.fromarray(rgb).quantize(16)
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    np.testing.assert_array_equal(preprocess.decode_image(buf.getvalue()), np.asarray(pal.convert("RGB")))
    g16 = gray.astype(np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(g16).save(buf, format="PNG")
    out16 = preprocess.decode_image(buf.getvalue())
    np.testing.assert_array_equal(out16[:, :, 0], gray)  # scaled, not clipped to 255


def test_decode_errors_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_bytes(b"hello, not a jpeg")
    good = _png(np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    for name, reason in [("empty.png", "zero-byte"), ("text.jpg", "not a recognised image"), ("cut.png", "")]:
        with pytest.raises(preprocess.BadImageError, match=name) as e:
            preprocess.decode_image(tmp_path / name)
        assert reason in e.value.reason


def test_reflect_pad_matches_opencv_border_reflect():
    # OpenCV BORDER_REFLECT: fedcba|abcdefgh|hgfedcb (edge repeated), bottom/right only; periodic when wider.
    row = np.arange(1, 4, dtype=np.uint8)[None, :, None]  # [1, 3, 1]: 1 2 3
    padded = preprocess.reflect_pad_to(np.repeat(row, 2, axis=0), 8)
    np.testing.assert_array_equal(padded[0, :, 0], [1, 2, 3, 3, 2, 1, 1, 2])
    np.testing.assert_array_equal(padded[:, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1])
    assert padded.shape == (8, 8, 1)


def test_official_crop_pads_small_images_then_crops_randomly():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 100, 3), dtype=np.uint8)
    crops = [preprocess.crop_image(img, 64, np.random.default_rng(s)) for s in range(8)]
    for c in crops:
        assert c.shape == (64, 64, 3)
        np.testing.assert_array_equal(c[:40], img[:, _offset(img, c)[1] : _offset(img, c)[1] + 64])
        np.testing.assert_array_equal(c[40:], img[::-1][:24, _offset(img, c)[1] : _offset(img, c)[1] + 64])
    assert len({_offset(img, c)[1] for c in crops}) > 1  # the crop position is random
    center = preprocess.crop_image(img, 64, rng, crop="center")
    np.testing.assert_array_equal(center[:40], img[:, 18:82])


def _offset(img, crop):
    for left in range(img.shape[1] - crop.shape[1] + 1):
        if np.array_equal(img[0, left : left + crop.shape[1]], crop[0]):
            return 0, left
    raise AssertionError("crop not found in the image")


def test_small_image_policies_and_resizing_crops():
    img = np.zeros((40, 100, 3), np.uint8)
    rng = np.random.default_rng(0)
    with pytest.raises(preprocess.BadImageError, match="small.jpg.*40x100"):
        preprocess.crop_image(img, 64, rng, small_images="error", where="small.jpg")
    assert preprocess.crop_image(img, 64, rng, small_images="resize").shape == (64, 64, 3)
    for crop in ("resize_random_crop", "resize_center_crop", "resize"):
        assert preprocess.crop_image(img, 32, rng, crop=crop).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="crop must be one of"):
        preprocess.crop_image(img, 32, rng, crop="zoom")


def test_value_range_and_dtypes():
    x = np.array([[[0, 128, 255]]], np.uint8)
    y = preprocess.to_model_range(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[[-1.0, 128 / 127.5 - 1, 1.0]]], atol=1e-6)
    np.testing.assert_array_equal(preprocess.from_model_range(y), x)
    b = preprocess.to_model_range(x, "bfloat16")
    assert b.dtype.name == "bfloat16"
    np.testing.assert_allclose(b.astype(np.float32), y, atol=1e-2)
