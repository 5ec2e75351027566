"""3x3 stride-1 'same' convolution as Winograd F(2x2, 3x3) (Lavin & Gray, 2016), for XLA:CPU.

Each 2x2 output tile is computed from a 4x4 input tile with 16 element-wise products instead of 36
multiply-adds per channel pair, so the 16 channel contractions are matmuls of [B*H/2*W/2, Cin] x [Cin, Cout]
with 2.25x fewer FLOPs than the direct convolution:

    V = B^T d B   (input tiles, per channel)      U = G g G^T   (kernel, per channel pair)
    M[a, b] = V[a, b] @ U[a, b]                   y = A^T M A   (2x2 output tile)

with B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]], G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]],
A^T = [[1,1,1,0],[0,1,-1,-1]] (cross-correlation, as `lax.conv_general_dilated` computes). The transforms
only add, subtract and halve, so results stay within float rounding of the direct convolution
(relative error ~1e-6 in float32, tests/test_winograd.py). All three steps are linear in x and in g. The
custom VJP keeps the gradients in Winograd form: the input gradient is the transposed input transform of
dM @ U^T and the weight gradient is G^T (sum over tiles of V^T dM) G, again 16 matmuls each, with
dM the transposed output transform of dy. The VJP is itself plain JAX ops, so second-order AD (R1) works.

Used by `conv.conv2d` with algorithm 'winograd' (the CPU default) for 3x3, stride 1, padding 1 on maps with
even H and W of at least `MIN_SIZE` (measured faster there, benchmarks/bench_conv.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MIN_SIZE = 32  # smallest H and W that take this path (at 16x16 the transforms cost more than they save)

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], np.float32)


def applies(x_shape: tuple, w_shape: tuple, stride: int, pad) -> bool:
    """Whether a conv of x [B,H,W,Cin] with w [kh,kw,Cin,Cout] can and should take the Winograd path."""
    _, h, w, _ = x_shape
    return (
        tuple(w_shape[:2]) == (3, 3)
        and stride == 1
        and pad == ((1, 1), (1, 1))
        and h % 2 == 0
        and w % 2 == 0
        and min(h, w) >= MIN_SIZE
    )


def _bt(d: list) -> list:
    """B^T applied across four samples d0..d3 of a tile axis."""
    return [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]


def _at(m: list) -> list:
    """A^T applied across four transformed samples m0..m3: two outputs."""
    return [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]


def input_tiles(x: jax.Array) -> list[jax.Array]:
    """V = B^T d B for every 4x4 tile (stride 2) of the 1-padded input: [B,H,W,C] -> 16 x [B*H/2*W/2, C].

    The overlapping tiles are read through a reshape into even/odd phases: padded row 2i + r is phase
    r % 2 of row pair i + r // 2.
    """
    c = x.shape[-1]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = _bt(_phases(xp, axis=1))  # 4 x [B, H/2, W+2, C]
    return [v.reshape(-1, c) for t in rows for v in _bt(_phases(t, axis=2))]


def _phases(t: jax.Array, axis: int) -> list[jax.Array]:
    """Samples 2i, 2i+1, 2i+2, 2i+3 (i < n) of an axis of length 2n+2, read as (phase 0, phase 1) of pairs i and
    i+1: four [..., n, ...] arrays."""
    n = t.shape[axis] // 2 - 1
    pairs = t.reshape(t.shape[:axis] + (n + 1, 2) + t.shape[axis + 1 :])

    def read(first, phase):
        return jax.lax.index_in_dim(jax.lax.slice_in_dim(pairs, first, first + n, axis=axis), phase, axis + 1, False)

    return [read(0, 0), read(0, 1), read(1, 0), read(1, 1)]


def kernel_tiles(g: jax.Array) -> jax.Array:
    """U = G g G^T: [3,3,Cin,Cout] -> [4,4,Cin,Cout]."""
    gm = jnp.asarray(_G, g.dtype)
    return jnp.einsum("ai,ijco,bj->abco", gm, g, gm)


def kernel_tiles_transpose(du: jax.Array) -> jax.Array:
    """Transpose of `kernel_tiles`: [4,4,Cin,Cout] -> [3,3,Cin,Cout] (in du's dtype)."""
    gm = jnp.asarray(_G, du.dtype)
    return jnp.einsum("ai,abco,bj->ijco", gm, du, gm)


def output_tiles(ms: list[jax.Array], b: int, h: int, w: int) -> jax.Array:
    """y = A^T M A: 16 x [B*H/2*W/2, Cout] (order (a, b)) -> [B,H,W,Cout]."""
    co = ms[0].shape[-1]
    ms = [mm.reshape(b, h // 2, w // 2, co) for mm in ms]
    cols = [_at([ms[4 * a + bb] for a in range(4)]) for bb in range(4)]  # cols[bb][i]: output row i of tile
    y = [_at([cols[bb][i] for bb in range(4)]) for i in range(2)]  # y[i][j]: output (i, j) of each tile
    rows = [jnp.stack(y[i], axis=3) for i in range(2)]  # [B, H/2, W/2, 2, Cout]
    return jnp.stack(rows, axis=2).reshape(b, h, w, co)  # [B, H/2, 2, W/2, 2, Cout] -> [B, H, W, Cout]


def _bt_adjoint(o: list) -> list:
    """Transpose of `_bt`: gradients of d0..d3 from those of its four outputs."""
    return [o[0], o[1] - o[2] + o[3], o[1] + o[2] - o[0], -o[3]]


def _at_adjoint(e: list) -> list:
    """Transpose of `_at`: gradients of m0..m3 from those of its two outputs."""
    return [e[0], e[0] + e[1], e[0] - e[1], -e[1]]


def _unphase(d: list, axis: int) -> jax.Array:
    """Transpose of `_phases`: four [..., n, ...] gradients -> the [..., 2n+2, ...] axis they were read from."""
    lo, hi = [(0, 0)] * d[0].ndim, [(0, 0)] * d[0].ndim
    lo[axis], hi[axis] = (0, 1), (1, 0)
    ph0 = jnp.pad(d[0], lo) + jnp.pad(d[2], hi)
    ph1 = jnp.pad(d[1], lo) + jnp.pad(d[3], hi)
    both = jnp.stack([ph0, ph1], axis=axis + 1)
    shape = list(ph0.shape)
    shape[axis] *= 2
    return both.reshape(shape)


def input_tiles_transpose(dvs: list[jax.Array], x_shape: tuple) -> jax.Array:
    """Transpose of `input_tiles`: 16 x [B*H/2*W/2, C] -> [B,H,W,C]."""
    b, h, w, c = x_shape
    drows = [
        _unphase(_bt_adjoint([dvs[4 * a + bb].reshape(b, h // 2, w // 2, c) for bb in range(4)]), axis=2)
        for a in range(4)
    ]  # 4 x [B, H/2, W+2, C]
    dxp = _unphase(_bt_adjoint(drows), axis=1)  # [B, H+2, W+2, C]
    return dxp[:, 1 : h + 1, 1 : w + 1]


def output_tiles_transpose(dy: jax.Array) -> list[jax.Array]:
    """Transpose of `output_tiles`: [B,H,W,Cout] -> 16 x [B*H/2*W/2, Cout]."""
    b, h, w, co = dy.shape
    t = dy.reshape(b, h // 2, 2, w // 2, 2, co)
    cols = [_at_adjoint([t[:, :, i, :, 0], t[:, :, i, :, 1]]) for i in range(2)]  # cols[i][bb]
    out = [None] * 16
    for bb in range(4):
        for a, v in enumerate(_at_adjoint([cols[0][bb], cols[1][bb]])):
            out[4 * a + bb] = v.reshape(-1, co)
    return out


def _forward(x, g):
    b, h, w, _ = x.shape
    u = kernel_tiles(g)
    vs = input_tiles(x)
    return output_tiles([vs[k] @ u[k // 4, k % 4] for k in range(16)], b, h, w)


@jax.custom_vjp
def conv3x3(x: jax.Array, g: jax.Array) -> jax.Array:
    """Cross-correlation of x [B,H,W,Cin] (H, W even) with g [3,3,Cin,Cout], padding 1 -> [B,H,W,Cout].

    g must already have x's dtype. The custom VJP keeps only x and g for the backward pass (the tiles are
    recomputed there: 4x less memory than saving them) and applies the transposed transforms directly.
    """
    return _forward(x, g)


def _conv3x3_fwd(x, g):
    return _forward(x, g), (x, g)


def _conv3x3_bwd(res, dy):
    x, g = res
    u = kernel_tiles(g)
    vs = input_tiles(x)
    dms = output_tiles_transpose(dy.astype(x.dtype))
    dvs = [dms[k] @ u[k // 4, k % 4].T for k in range(16)]
    du = jnp.stack(
        [
            jax.lax.dot_general(vs[k], dms[k], (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)
            for k in range(16)
        ]
    ).reshape(4, 4, *g.shape[2:])
    return input_tiles_transpose(dvs, x.shape), kernel_tiles_transpose(du).astype(g.dtype)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)
