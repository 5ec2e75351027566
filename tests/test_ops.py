"""Resampling ops against a direct float64 NumPy statement of the official recipes (spec §1.4)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mat_jax.models import ops


def _np_corr(x, w, stride=1):
    """Valid cross-correlation, NHWC x HWIO, float64."""
    k = w.shape[0]
    b, h, wd, _ = x.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((b, oh, ow, w.shape[3]))
    for i in range(k):
        for j in range(k):
            patch = x[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride]
            out += patch @ w[i, j]
    return out


def _np_fir(x, gain=1.0):
    f = ops.resample_filter_2d().astype(np.float64) * gain
    c = x.shape[-1]
    return _np_corr(x, np.einsum("ij,cd->ijcd", f, np.eye(c)))


def _pad(x, p):
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def _stuff(x):
    b, h, w, c = x.shape
    u = np.zeros((b, 2 * h - 1, 2 * w - 1, c))
    u[:, ::2, ::2] = x
    return u


@pytest.fixture(scope="module", autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 8, 8, 3))


@pytest.mark.parametrize("k", [1, 3])
def test_plain_conv(k):
    w = RNG.standard_normal((k, k, 3, 4))
    np.testing.assert_allclose(ops.conv2d_resample(X, w), _np_corr(_pad(X, k // 2), w), atol=1e-12)


def test_down_3x3():
    w = RNG.standard_normal((3, 3, 3, 4))
    want = _np_corr(_np_fir(_pad(X, 2)), w, stride=2)  # pad 2, FIR -> H+1, stride-2 conv -> H/2
    got = ops.conv2d_resample(X, w, down=2)
    assert got.shape == (2, 4, 4, 4)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_down_1x1():
    w = RNG.standard_normal((1, 1, 3, 4))
    want = _np_corr(_np_fir(_pad(X, 1))[:, ::2, ::2], w)
    np.testing.assert_allclose(ops.conv2d_resample(X, w, down=2), want, atol=1e-12)


def test_up_3x3_polyphase_equals_zero_stuffing():
    w = RNG.standard_normal((3, 3, 3, 4))
    want = _np_fir(_pad(_np_corr(_pad(_stuff(X), 2), w), 1), gain=4.0)  # stuff, pad 2, conv, pad 1, 4f
    got = ops.conv2d_resample(X, w, up=2)
    assert got.shape == (2, 16, 16, 4)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_upsample2d_filter_only():
    np.testing.assert_allclose(ops.upsample2d(X), _np_fir(_pad(_stuff(X), 2), gain=4.0), atol=1e-12)


def test_resize_linear_matches_torch_formula():
    x = np.arange(6, dtype=np.float64)[None, :]  # upsample 6 -> 9, align_corners=False, edge clamped
    got = np.asarray(ops.resize_linear_1d(x, 9, axis=1))[0]
    src = np.maximum((np.arange(9) + 0.5) * 6 / 9 - 0.5, 0)
    np.testing.assert_allclose(got, np.interp(src, np.arange(6), x[0]), atol=1e-12)
    np.testing.assert_array_equal(ops.resize_linear_1d(x, 6, axis=1), x)


def test_resample_filter_is_official():
    f = ops.resample_filter_2d()
    assert f.dtype == np.float32 and f.shape == (4, 4)
    np.testing.assert_array_equal(f, np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32) / 64)
