"""Windows and Multi-head Contextual Attention (MCA) with the dynamic mask update.

Token maps are [B, L, C] with L = H*W row-major; windows are [B*nW, N, C] with N = ws*ws, batch
outer (window index = b*nW + wh*(W/ws) + ww) and tokens row-major inside a window — the official
order, so the shift masks and per-window results line up with the reference bit for bit.
Masks: 1 = valid (known) token, 0 = invalid (hole).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mat_jax.models.constants import MASK_NEG, shifted_window_mask  # noqa: F401  (re-exported)
from mat_jax.models.layers import EqDense


def window_partition(x: jax.Array, ws: int) -> jax.Array:
    """[B, H, W, C] -> [B*nW, ws*ws, C]."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b * (h // ws) * (w // ws), ws * ws, c)


def window_reverse(win: jax.Array, ws: int, h: int, w: int) -> jax.Array:
    """[B*nW, ws*ws, C] -> [B, H, W, C]."""
    c = win.shape[-1]
    b = win.shape[0] // ((h // ws) * (w // ws))
    x = win.reshape(b, h // ws, w // ws, ws, ws, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def key_mask_bias(m: jax.Array) -> jax.Array:
    """Additive key bias from key validity m [Bw, N]: -100 where m == 0, 0 where m == 1, and the
    raw value m otherwise (the official fractional-mask behaviour, kept for parity)."""
    return jnp.where(m == 0, MASK_NEG, jnp.where(m == 1, 0.0, m))


def update_window_mask(m: jax.Array) -> jax.Array:
    """Window-level OR: a window becomes fully valid once any of its tokens is. [Bw,N,1] -> [Bw,N,1]."""
    return jnp.broadcast_to(jnp.clip(jnp.sum(m, axis=1, keepdims=True), 0.0, 1.0), m.shape)


class WindowAttention(nn.Module):
    """MCA: q/k from the L2-normalised input, v from the raw input, key-only mask bias.

    x: [Bw, N, C]; mask: [Bw, N, 1] or None; shift_mask: [nW, N, N] constant or None.
    Returns (out [Bw, N, C], updated mask or None).
    """

    dim: int
    num_heads: int
    mask_update: str = "window_or"

    @nn.compact
    def __call__(self, x, mask=None, shift_mask=None):
        bw, n, c = x.shape
        h, d = self.num_heads, c // self.num_heads
        norm = jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True))
        xn = x / jnp.maximum(norm, 1e-12).astype(x.dtype)
        q = EqDense(self.dim, name="q")(xn).reshape(bw, n, h, d)
        k = EqDense(self.dim, name="k")(xn).reshape(bw, n, h, d)
        v = EqDense(self.dim, name="v")(x).reshape(bw, n, h, d)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * (d**-0.5)  # [Bw, h, N, N]
        logits = logits.astype(jnp.float32)
        if shift_mask is not None:
            nw = shift_mask.shape[0]
            logits = logits.reshape(bw // nw, nw, h, n, n) + jnp.asarray(shift_mask)[None, :, None]
            logits = logits.reshape(bw, h, n, n)
        if mask is not None:
            mask = jax.lax.stop_gradient(mask)
            logits = logits + key_mask_bias(mask[..., 0])[:, None, None, :]
            if self.mask_update == "window_or":
                mask = update_window_mask(mask)
        attn = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        out = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(bw, n, c)
        return EqDense(self.dim, name="proj")(out), mask
