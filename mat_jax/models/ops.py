"""Stateless numerical ops of MAT in NHWC: bias+activation, FIR resampling, resize.

Resampling follows StyleGAN2-ADA's `upfirdn2d` / `conv2d_resample` for exactly the cases MAT
uses (see mat-architecture.md §1.4), as plain XLA ops: no custom kernels. The [1,3,3,1] filter
is separable and symmetric, so the 4x4 FIR is applied as two 1-D passes of shifted slices,
which XLA fuses into neighbouring element-wise work.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from mat_jax.kernels import conv
from mat_jax.models.constants import FIR_TAPS as _TAPS
from mat_jax.models.constants import resample_filter as resample_filter_2d  # noqa: F401  (the official buffer)

SQRT2 = math.sqrt(2.0)
LRELU_ALPHA = 0.2

# 1-D taps of the resampling filter; the 2-D filter is outer(a, a) / sum(outer) = (a/8) x (a/8).
FIR_TAPS = np.array(_TAPS, dtype=np.float64) / np.sum(_TAPS)


def default_gain(act: str) -> float:
    return {"linear": 1.0, "lrelu": SQRT2}[act]


def bias_act(x: jax.Array, b: jax.Array | None, act: str = "linear", gain: float | None = None) -> jax.Array:
    """x + b (on the last axis), activation, times gain (default gain of the activation). No clamp."""
    if b is not None:
        x = x + b.astype(x.dtype)
    if act == "lrelu":
        x = jnp.where(x >= 0, x, x * LRELU_ALPHA)
    elif act != "linear":
        raise ValueError(f"unsupported activation {act!r}")
    g = default_gain(act) if gain is None else gain
    return x * g if g != 1 else x


def _fir_1d(x: jax.Array, axis: int, gain: float) -> jax.Array:
    """'valid' correlation of one spatial axis with the 4 taps (times gain): length n -> n - 3."""
    n = x.shape[axis]
    taps = FIR_TAPS * gain
    out = None
    for k, t in enumerate(taps):
        sl = jax.lax.slice_in_dim(x, k, n - 3 + k, axis=axis)
        term = sl * jnp.asarray(t, x.dtype)
        out = term if out is None else out + term
    return out


def fir_2d(x: jax.Array, gain: float = 1.0) -> jax.Array:
    """'valid' 4x4 FIR of an NHWC map with outer(taps, taps)*gain: [B,H,W,C] -> [B,H-3,W-3,C]."""
    x = _fir_1d(x, 1, 1.0)
    return _fir_1d(x, 2, gain)


def pad_hw(x: jax.Array, p0: int, p1: int | None = None) -> jax.Array:
    p1 = p0 if p1 is None else p1
    return jnp.pad(x, ((0, 0), (p0, p1), (p0, p1), (0, 0)))


def zero_stuff(x: jax.Array) -> jax.Array:
    """Insert one zero between samples: [B,H,W,C] -> [B,2H-1,2W-1,C] with u[2i] = x[i]."""
    b, h, w, c = x.shape
    u = jnp.zeros((b, 2 * h - 1, 2 * w - 1, c), x.dtype)
    return u.at[:, ::2, ::2, :].set(x)


def blur_down_pre(x: jax.Array) -> jax.Array:
    """FIR part of a 3x3 down=2 conv: pad 2, 4x4 filter -> [B,H+1,W+1,C] (then stride-2 conv)."""
    return fir_2d(pad_hw(x, 2))


def downsample2d_1x1(x: jax.Array) -> jax.Array:
    """FIR part of a 1x1 down=2 conv: pad 1, 4x4 filter, keep every 2nd sample -> [B,H/2,W/2,C]."""
    y = fir_2d(pad_hw(x, 1))
    return y[:, ::2, ::2, :]


def upsample2d(x: jax.Array) -> jax.Array:
    """Filter-only 2x upsampling (ToRGB skip path): zero-stuff, pad 2, FIR with 4f -> [B,2H,2W,C]."""
    return fir_2d(pad_hw(zero_stuff(x), 2), gain=4.0)


def conv2d_resample(
    x_BxHxWxCin: jax.Array, w_hwio: jax.Array, up: int = 1, down: int = 1, algorithm: str = "auto"
) -> jax.Array:
    """`conv2d_resample` with padding k//2 for the MAT cases: k x k plain, 3x3/1x1 down=2, 3x3 up=2.

    x: [B,H,W,Cin], w: [k,k,Cin,Cout] (already gain-scaled) -> [B,H*up/down,W*up/down,Cout]; `algorithm` is the
    convolution algorithm of `mat_jax.kernels` (static: `MATConfig.conv`).
    """
    x, k = x_BxHxWxCin, w_hwio.shape[0]
    if up == 1 and down == 1:
        return conv.conv2d(x, w_hwio, padding=k // 2, algorithm=algorithm)
    if up == 1 and down == 2:
        if k == 1:
            return conv.conv2d(downsample2d_1x1(x), w_hwio, algorithm=algorithm)
        if k == 3:
            return conv.conv2d(blur_down_pre(x), w_hwio, stride=2, algorithm=algorithm)
    if up == 2 and down == 1 and k == 3:
        # Correlation with the unflipped kernel on the zero-stuffed input (pad 2) -> 2H+1, then 4f FIR.
        return upconv3x3_fir(x, w_hwio, algorithm)
    raise NotImplementedError(f"conv2d_resample: kernel {k}, up={up}, down={down} is not used by MAT")


def _up_fir_1d(e: jax.Array, o: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """The 4f FIR after a stride-2 up-conv, evaluated per phase along one axis.

    e: samples y[2p] (length n+1), o: samples y[2p+1] (length n) of the 2n+1 up-conv output.
    The FIR (pad 1, taps t = [1,3,3,1]/4) gives z[2m] = t1 e[m] + t3 e[m+1] + t0 o[m-1] + t2 o[m] and
    z[2m+1] = t0 e[m] + t2 e[m+1] + t1 o[m] + t3 o[m+1] (o[-1] = o[n] = 0): returns (z_even, z_odd),
    both of length n, without ever materialising the interleaved 2n+1 signal.
    """
    n = o.shape[axis]
    t0, t1 = 0.25, 0.75

    def sl(x, a, b):
        return jax.lax.slice_in_dim(x, a, b, axis=axis)

    widths = [(0, 0)] * o.ndim
    widths[axis] = (1, 1)
    op = jnp.pad(o, widths)  # op[j] = o[j - 1]
    e0, e1 = sl(e, 0, n), sl(e, 1, n + 1)
    z_even = t1 * e0 + t0 * e1 + t0 * sl(op, 0, n) + t1 * sl(op, 1, n + 1)
    z_odd = t0 * e0 + t1 * e1 + t1 * sl(op, 1, n + 1) + t0 * sl(op, 2, n + 2)
    return z_even, z_odd


def upconv3x3_fir(x_BxHxWxCin: jax.Array, w_hwio: jax.Array, algorithm: str = "auto") -> jax.Array:
    """3x3 up=2 conv of conv2d_resample: correlation of the zero-stuffed, 2-padded input followed by
    the 4f FIR (pad 1), computed in polyphase form. [B,H,W,Cin] -> [B,2H,2W,Cout].

    With u[2i] = x[i], the up-conv output is y[2p] = w0 x[p-1] + w2 x[p] and y[2p+1] = w1 x[p] along
    each axis, so its four phases are convolutions of x with the 2x2, 2x1, 1x2 and 1x1 sub-kernels
    (no multiplications by inserted zeros: 4x fewer FLOPs); the FIR is then applied per phase and
    the four output phases are interleaved once. Equals the direct recipe up to float rounding.
    """
    x = x_BxHxWxCin

    def conv2d(w, padding=0):
        return conv.conv2d(x, w, padding=padding, algorithm=algorithm)

    ee = conv2d(w_hwio[0::2, 0::2], padding=((1, 1), (1, 1)))  # y[2p, 2q]     [B, H+1, W+1, C]
    eo = conv2d(w_hwio[0::2, 1:2], padding=((1, 1), (0, 0)))  # y[2p, 2q+1]   [B, H+1, W, C]
    oe = conv2d(w_hwio[1:2, 0::2], padding=((0, 0), (1, 1)))  # y[2p+1, 2q]   [B, H, W+1, C]
    oo = conv2d(w_hwio[1:2, 1:2])  # y[2p+1, 2q+1] [B, H, W, C]
    re_e, ro_e = _up_fir_1d(ee, oe, axis=1)  # rows filtered, even columns: [B, H, W+1, C] each
    re_o, ro_o = _up_fir_1d(eo, oo, axis=1)  # rows filtered, odd columns:  [B, H, W, C] each
    z_ee, z_eo = _up_fir_1d(re_e, re_o, axis=2)  # even output rows: [B, H, W, C] each
    z_oe, z_oo = _up_fir_1d(ro_e, ro_o, axis=2)  # odd output rows
    b, h, w, c = z_ee.shape
    even_rows = jnp.stack([z_ee, z_eo], axis=3)  # [B, H, W, 2, C]
    odd_rows = jnp.stack([z_oe, z_oo], axis=3)
    return jnp.stack([even_rows, odd_rows], axis=2).reshape(b, 2 * h, 2 * w, c)


def box_count(mask: jax.Array, k: int, stride: int) -> jax.Array:
    """Number of ones in each k x k window (zero padding k//2, given stride): [B,H,W,1] -> [B,H',W',1]."""
    p = k // 2
    return jax.lax.reduce_window(
        mask, 0.0, jax.lax.add, (1, k, k, 1), (1, stride, stride, 1), ((0, 0), (p, p), (p, p), (0, 0))
    )


def _linear_indices(n_in: int, n_out: int):
    """Source indices/weights of PyTorch's linear interpolation with align_corners=False."""
    scale = n_in / n_out
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).astype(np.float32)
    return i0, i1, lam


def resize_linear_1d(x: jax.Array, n_out: int, axis: int) -> jax.Array:
    """torch F.interpolate(mode='linear'/'bilinear', align_corners=False) along one axis."""
    n_in = x.shape[axis]
    if n_in == n_out:
        return x
    i0, i1, lam = _linear_indices(n_in, n_out)
    shape = [1] * x.ndim
    shape[axis] = n_out
    lam = jnp.asarray(lam, x.dtype).reshape(shape)
    return jnp.take(x, i0, axis=axis) * (1 - lam) + jnp.take(x, i1, axis=axis) * lam
