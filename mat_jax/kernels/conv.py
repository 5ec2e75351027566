"""2-D convolution (NHWC x HWIO) with gradients that run fast on XLA:CPU.

XLA:CPU lowers the weight gradient of a convolution to a convolution whose "kernel" is the whole
output-gradient map; Eigen runs that at 6-45 GFLOP/s on full-resolution MAT layers (a 1x1 conv's
weight gradient at 256x256x180: 5.7 GFLOP/s), against ~150 for a forward conv. The input gradient of a
1x1 conv and the 1x1 forward itself are also 2-3x off a plain matmul, and a strided forward conv runs
at ~60 GFLOP/s. On CPU, `conv2d` therefore carries a custom VJP:

  forward   XLA's conv for stride 1; 1x1 stride 1: one matmul over [B*H*W, Cin]; strided: im2col in
            row chunks under `lax.scan`, one matmul per chunk (130-170 GFLOP/s);
  d input   a stride-1 conv of the output gradient with the flipped, transposed kernel (through
            `conv2d` itself, so second-order gradients, e.g. R1, stay on the fast path); stride 2:
            one stride-1 conv per output phase of the kernel (no multiplications by the zeros an
            lhs-dilated conv inserts); 1x1: one matmul;
  d weight  im2col in row chunks under `lax.scan`: for each chunk of output rows the k*k shifted
            input windows are concatenated to [rows*W, k*k*Cin] and contracted with the output
            gradient [rows*W, Cout] in one matmul (float32 accumulation). Also on small maps: XLA's
            weight gradient of the 2x2/2x1/1x2 polyphase sub-kernels at 32x32x512 ran below 1 GFLOP/s.

With algorithm 'winograd', 3x3 stride-1 'same' convolutions on even maps of at least 32x32 (most of
MAT's FLOPs) go further: they run as Winograd F(2x2,3x3) (`winograd.py`, 2.25x fewer multiplications, its
own VJP).

Values and gradients equal XLA's up to float rounding (tests/test_conv_grad.py; stride-1 k>1 forward
values are XLA's own). The algorithm is a static argument (`MATConfig.conv` in the models), so it is part
of what `jit` traces; 'auto' is `mat_jax.kernels.default_algorithm()`, fixed once per process.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from mat_jax.kernels import winograd
from mat_jax.kernels.settings import resolve

Padding = tuple[tuple[int, int], tuple[int, int]]
DN = ("NHWC", "HWIO", "NHWC")
CHUNK_ELEMENTS = 1 << 20  # im2col elements per chunk (4 MiB in float32)


def normalize_padding(padding: int | tuple) -> Padding:
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    (a, b), (c, d) = padding
    return ((int(a), int(b)), (int(c), int(d)))


def conv2d(
    x_BxHxWxCin: jax.Array, w_hwio: jax.Array, stride: int = 1, padding: int | tuple = 0, algorithm: str = "auto"
) -> jax.Array:
    """Cross-correlation: x [B,H,W,Cin], w [kh,kw,Cin,Cout] -> [B,Ho,Wo,Cout] (w cast to x's dtype).

    algorithm: 'xla' (XLA's conv and gradients) | 'custom' (this module's VJP) | 'winograd' (custom, and
    Winograd for the 3x3 stride-1 'same' case where it applies) | 'auto' (the process default)."""
    x = x_BxHxWxCin
    algorithm = resolve(algorithm)
    pad = normalize_padding(padding)
    w = w_hwio.astype(x.dtype)
    if algorithm == "xla":
        return _xla_conv(x, w, stride, pad)
    use_winograd = algorithm == "winograd"
    if use_winograd and winograd.applies(x.shape, w.shape, int(stride), pad):
        return winograd.conv3x3(x, w)  # w already in x's dtype
    return _conv(x, w, int(stride), pad, use_winograd)


def _is_pointwise(w: jax.Array, stride: int, pad: Padding) -> bool:
    return w.shape[:2] == (1, 1) and stride == 1 and pad == ((0, 0), (0, 0))


def _xla_conv(x, w, stride, pad):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), pad, dimension_numbers=DN)


def _forward(x, w, stride, pad):
    if _is_pointwise(w, stride, pad):
        b, h, wd, c = x.shape
        return (x.reshape(-1, c) @ w[0, 0]).reshape(b, h, wd, w.shape[-1])
    if stride > 1:
        return _strided_forward(x, w, stride, pad)
    return _xla_conv(x, w, stride, pad)


def _rows_per_chunk(b, wo, k_elems, ho):
    return max(1, min(ho, CHUNK_ELEMENTS // max(1, b * wo * k_elems)))


def _taps(xs, kh, kw, s, rows, wo):
    """im2col of a row chunk: xs [B, s*(rows-1)+kh, Wp, C] -> [B*rows*wo, kh*kw*C], (i, j, c) order."""
    taps = [
        xs[:, i : i + s * (rows - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s, :] for i in range(kh) for j in range(kw)
    ]
    cols = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
    return cols.reshape(-1, cols.shape[-1])


def _strided_forward(x, w, s, pad):
    """Strided conv as im2col + matmul over row chunks (XLA:CPU's strided conv runs at ~60 GFLOP/s, this at
    ~130-170)."""
    kh, kw, cin, cout = w.shape
    b = x.shape[0]
    xp = jnp.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
    ho, wo = (xp.shape[1] - kh) // s + 1, (xp.shape[2] - kw) // s + 1
    wm = w.reshape(kh * kw * cin, cout)
    rows = _rows_per_chunk(b, wo, kh * kw * cin, ho)
    n_full, rest = divmod(ho, rows)

    def chunk(r0, n_rows):  # static r0: output rows [r0, r0 + n_rows) -> [B, n_rows, Wo, Cout]
        xs = xp[:, r0 * s : r0 * s + s * (n_rows - 1) + kh]
        return (_taps(xs, kh, kw, s, n_rows, wo) @ wm).reshape(b, n_rows, wo, cout)

    def body(_, k):
        xs = jax.lax.dynamic_slice_in_dim(xp, k * rows * s, s * (rows - 1) + kh, axis=1)
        return None, (_taps(xs, kh, kw, s, rows, wo) @ wm).reshape(b, rows, wo, cout)

    if n_full == 1:
        parts = [chunk(0, rows)]
    else:
        _, ys = jax.lax.scan(body, None, jnp.arange(n_full))  # [n, B, rows, Wo, Cout]
        parts = [ys.transpose(1, 0, 2, 3, 4).reshape(b, n_full * rows, wo, cout)]
    if rest:
        parts.append(chunk(n_full * rows, rest))
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, w, stride, pad, use_winograd):
    return _forward(x, w, stride, pad)


def _conv_fwd(x, w, stride, pad, use_winograd):
    return _forward(x, w, stride, pad), (x, w)


def _conv_bwd(stride, pad, use_winograd, res, dy):
    x, w = res
    algorithm = "winograd" if use_winograd else "custom"  # the input gradient's own convs stay on this path
    return (
        _input_grad(dy, w, x.shape, stride, pad, algorithm),
        _weight_grad(x, dy, w.shape, stride, pad).astype(w.dtype),
    )


_conv.defvjp(_conv_fwd, _conv_bwd)


def _input_grad(dy, w, x_shape, stride, pad, algorithm):
    """d conv / d x for output gradient dy [B,Ho,Wo,Cout] -> [B,H,W,Cin]."""
    kh, kw, cin, cout = w.shape
    b, h, wd, _ = x_shape
    if _is_pointwise(w, stride, pad):
        return (dy.reshape(-1, cout) @ w[0, 0].T).reshape(b, h, wd, cin)
    if stride == 1:
        (pt, pb), (pl, pr) = pad
        wt = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)  # [kh, kw, Cout, Cin]
        if min(kh - 1 - pt, kh - 1 - pb, kw - 1 - pl, kw - 1 - pr) >= 0:
            return conv2d(dy, wt, 1, ((kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr)), algorithm)
        return jax.vjp(lambda v: _xla_conv(v, w, 1, pad), jnp.zeros(x_shape, dy.dtype))[1](dy)[0]
    return _strided_input_grad(dy, w, x_shape, stride, pad, algorithm)


def _strided_input_grad(dy, w, x_shape, s, pad, algorithm):
    """Transposed strided conv as s*s stride-1 convs, one per phase of the padded input.

    With xp the padded input and y[p] = sum_i xp[s*p + i] w[i] (per axis), xp[s*q + a] receives
    sum_t dy[q - t] w[a + s*t]: a full correlation of dy with the flipped sub-kernel w[a::s].
    """
    kh, kw, cin, cout = w.shape
    b, h, wd, _ = x_shape
    (pt, pb), (pl, pr) = pad
    hp, wp = h + pt + pb, wd + pl + pr
    lh, lw = -(-hp // s), -(-wp // s)  # phase lengths (the longest phase, a = 0)
    ho, wo = dy.shape[1], dy.shape[2]
    rows = []
    for a in range(s):
        cols = []
        for c in range(s):
            sub = w[a::s, c::s]  # [ka, kc, Cin, Cout]
            ka, kc = sub.shape[:2]
            if ka == 0 or kc == 0:
                cols.append(jnp.zeros((b, lh, lw, cin), dy.dtype))
                continue
            wt = jnp.flip(sub, (0, 1)).transpose(0, 1, 3, 2)
            # full correlation (front pad k-1), then cut or zero-extend to the phase grid lh x lw
            ph = conv2d(dy, wt, 1, ((ka - 1, max(0, lh - ho)), (kc - 1, max(0, lw - wo))), algorithm)
            cols.append(ph[:, :lh, :lw])
        rows.append(jnp.stack(cols, axis=3))  # [B, lh, lw, s, Cin]
    full = jnp.stack(rows, axis=2).reshape(b, lh * s, lw * s, cin)  # interleave: xp[s*q + a, s*r + c]
    return full[:, pt : pt + h, pl : pl + wd]


def _weight_grad(x, dy, w_shape, stride, pad):
    """d conv / d w for x [B,H,W,Cin], dy [B,Ho,Wo,Cout] -> float32 [kh,kw,Cin,Cout]."""
    kh, kw, cin, cout = w_shape
    b, ho, wo, _ = dy.shape
    s = stride
    xp = jnp.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))

    def chunk(xs, ds, rows):  # xs [B, s*(rows-1)+kh, Wp, Cin], ds [B, rows, Wo, Cout] -> [kh*kw*Cin, Cout]
        return jax.lax.dot_general(
            _taps(xs, kh, kw, s, rows, wo),
            ds.reshape(-1, cout),
            (((0,), (0,)), ((), ())),
            preferred_element_type=jnp.float32,
        )

    rows = _rows_per_chunk(b, wo, kh * kw * cin, ho)
    n_full = ho // rows
    in_rows = s * (rows - 1) + kh

    def body(acc, k):
        xs = jax.lax.dynamic_slice_in_dim(xp, k * rows * s, in_rows, axis=1)
        ds = jax.lax.dynamic_slice_in_dim(dy, k * rows, rows, axis=1)
        return acc + chunk(xs, ds, rows), None

    acc = jnp.zeros((kh * kw * cin, cout), jnp.float32)
    if n_full == 1:
        acc = chunk(xp[:, :in_rows], dy[:, :rows], rows)
    else:
        acc, _ = jax.lax.scan(body, acc, jnp.arange(n_full))
    rest = ho - n_full * rows
    if rest:
        r0 = n_full * rows
        acc = acc + chunk(xp[:, r0 * s : r0 * s + s * (rest - 1) + kh], dy[:, r0:], rest)
    return acc.reshape(kh, kw, cin, cout)
