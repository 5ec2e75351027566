"""TensorFlow 1's legacy bilinear resize (what the FID Inception graph was fed), in JAX.

Source coordinate = dst · in / out: no half-pixel offset, no antialiasing, the far neighbour clamped to the last
row / column. NVIDIA's TorchScript reproduces it with `affine_grid` + `grid_sample` (bilinear, border padding,
align_corners=False, theta shifted by 1/in − 1/out), which is what MAT's FID numbers went through.
`jax.image.resize(..., "bilinear")` is a different filter (half-pixel centres, antialiased when shrinking).

The taps are computed once per (in, out) size on the host in float64 (sizes are static), so under jit the resize is
two gathers and two lerps per axis.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

__all__ = ["legacy_bilinear_taps", "resize_legacy_bilinear", "INCEPTION_SIZE"]

INCEPTION_SIZE = 299


@functools.lru_cache(maxsize=64)
def legacy_bilinear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo [out] int32, hi [out] int32, frac [out] float32): out[i] = x[lo]·(1 − frac) + x[hi]·frac."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"resize sizes must be positive, got {in_size} -> {out_size}")
    src = np.arange(out_size, dtype=np.float64) * (in_size / out_size)
    lo = np.minimum(np.floor(src), in_size - 1)
    frac = src - lo
    hi = np.minimum(lo + 1, in_size - 1)
    return lo.astype(np.int32), hi.astype(np.int32), frac.astype(np.float32)


def _resize_axis(x: jnp.ndarray, axis: int, out_size: int) -> jnp.ndarray:
    lo, hi, frac = legacy_bilinear_taps(x.shape[axis], out_size)
    shape = [1] * x.ndim
    shape[axis] = out_size
    a, b = jnp.take(x, lo, axis=axis), jnp.take(x, hi, axis=axis)
    return a + (b - a) * jnp.asarray(frac).reshape(shape)


def resize_legacy_bilinear(
    x_NxHxWxC: jnp.ndarray, size: tuple[int, int] = (INCEPTION_SIZE, INCEPTION_SIZE)
) -> jnp.ndarray:
    """[N, H, W, C] (uint8 or float, 0–255) -> [N, size[0], size[1], C] float32; the identity at the same size."""
    if x_NxHxWxC.ndim != 4:
        raise ValueError(f"expected [N, H, W, C] images, got shape {x_NxHxWxC.shape}")
    x = jnp.asarray(x_NxHxWxC).astype(jnp.float32)
    if x.shape[1] != size[0]:
        x = _resize_axis(x, 1, size[0])
    if x.shape[2] != size[1]:
        x = _resize_axis(x, 2, size[1])
    return x
