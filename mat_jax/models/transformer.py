"""The stage-1 transformer body: adjusted Swin blocks, patch merging/upsampling, BasicLayer."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mat_jax.models.attention import WindowAttention, window_partition, window_reverse
from mat_jax.models.constants import effective_window, shifted_window_mask
from mat_jax.models.layers import EqDense, PartialConv2d


class SwinBlock(nn.Module):
    """One transformer block on tokens [B, L, C] of an hw = (H, W) map (window and shift are fixed at
    construction from the trained size, the region mask is computed for the actual size).

    block='adjusted' (official): out = mlp(fuse([x, attn(x)])), no LayerNorm, no residuals.
    block='prenorm_residual' (ablation): x += attn(LN(x)); x += mlp(LN(x)).
    attention='full' uses one window over the whole map.
    """

    dim: int
    num_heads: int
    window: int
    shift: int
    mlp_ratio: float = 2.0
    block: str = "adjusted"
    mask_update: str = "window_or"

    @nn.compact
    def __call__(self, x, hw, mask=None):  # x [B, L, C], hw = (H, W) with L = H*W, mask [B, L, 1] or None
        b, l, c = x.shape
        (sh_, sw_), ws, sh = hw, self.window, self.shift
        if sh_ % ws or sw_ % ws:
            raise ValueError(f"a {sh_}x{sw_} token map is not tiled by {ws}x{ws} windows")
        shortcut = x
        h = nn.LayerNorm(epsilon=1e-5, name="norm1")(x) if self.block == "prenorm_residual" else x
        h = h.reshape(b, sh_, sw_, c)
        m = None if mask is None else mask.reshape(b, sh_, sw_, 1)
        if sh:
            h = jnp.roll(h, (-sh, -sh), axis=(1, 2))
            m = None if m is None else jnp.roll(m, (-sh, -sh), axis=(1, 2))
        shift_mask = shifted_window_mask(sh_, sw_, ws, sh) if sh else None
        hwin, mw = window_partition(h, ws), (None if m is None else window_partition(m, ws))
        hwin, mw = WindowAttention(self.dim, self.num_heads, self.mask_update, name="attn")(hwin, mw, shift_mask)
        h = window_reverse(hwin, ws, sh_, sw_)
        m = None if mw is None else window_reverse(mw, ws, sh_, sw_)
        if sh:
            h = jnp.roll(h, (sh, sh), axis=(1, 2))
            m = None if m is None else jnp.roll(m, (sh, sh), axis=(1, 2))
        h = h.reshape(b, l, c)
        new_mask = None if m is None else m.reshape(b, l, 1)

        hidden = int(self.dim * self.mlp_ratio)
        if self.block == "adjusted":
            x = EqDense(self.dim, act="lrelu", name="fuse")(jnp.concatenate([shortcut, h], axis=-1))
            x = _Mlp(hidden, self.dim, name="mlp")(x)
        else:
            x = shortcut + h
            x = x + _Mlp(hidden, self.dim, name="mlp")(nn.LayerNorm(epsilon=1e-5, name="norm2")(x))
        return x, new_mask


class _Mlp(nn.Module):
    hidden: int
    out: int

    @nn.compact
    def __call__(self, tokens_BxLxC):  # -> [B, L, out]
        x = EqDense(self.hidden, act="lrelu", name="fc1")(tokens_BxLxC)
        return EqDense(self.out, name="fc2")(x)


def _to_map(t: jax.Array, hw: tuple[int, int]) -> jax.Array:  # [B, L, C] -> [B, H, W, C]
    return t.reshape(t.shape[0], hw[0], hw[1], t.shape[-1])


def _to_tokens(f: jax.Array) -> jax.Array:  # [B, H, W, C] -> [B, H*W, C]
    return f.reshape(f.shape[0], -1, f.shape[-1])


class BasicLayer(nn.Module):
    """[resample (PatchMerging down=2 / PatchUpsampling up=2)] -> blocks -> partial conv + identity.

    `trained_size` is the token-map side after the resampler at the trained resolution: it fixes the
    windows and shifts (official constructor rule); the actual map size `hw` (before the resampler)
    comes with the input, so larger inputs (multiples of the trained size) run like the official code.
    """

    dim: int
    depth: int
    num_heads: int
    window: int
    trained_size: int
    resample: str | None = None
    mlp_ratio: float = 2.0
    attention: str = "mca"
    mask_update: str = "window_or"
    block: str = "adjusted"
    shifted_windows: bool = True

    @nn.compact
    def __call__(self, x, hw, mask=None):  # x [B, L, C] of an hw = (H, W) map; mask [B, L, 1] or None
        if self.resample is not None:
            f, m = _to_map(x, hw), (None if mask is None else _to_map(mask, hw))
            down, up = (2, 1) if self.resample == "down" else (1, 2)
            f, m = _Resampler(self.dim, down, up, name="downsample")(f, m)
            hw = f.shape[1:3]
            x, mask = _to_tokens(f), (None if m is None else _to_tokens(m))
        identity = x
        attn_mask = mask if self.attention != "window" else None
        for j in range(self.depth):
            if self.attention == "full":
                ws, sh = (hw[0], 0) if hw[0] == hw[1] else (None, 0)
                if ws is None:
                    raise ValueError(f"attention='full' needs a square token map, got {hw}")
            else:
                ws, sh = effective_window(self.trained_size, self.window, self.shifted_windows and j % 2 == 1)
            x, new = SwinBlock(
                self.dim, self.num_heads, ws, sh, self.mlp_ratio, self.block, self.mask_update, name=f"blocks_{j}"
            )(x, hw, attn_mask)
            if attn_mask is not None:
                attn_mask = new
        if attn_mask is not None:
            mask = attn_mask
        f, m = PartialConv2d(self.dim, 3, "lrelu", name="conv")(
            _to_map(x, hw), None if mask is None else _to_map(mask, hw)
        )
        x = _to_tokens(f) + identity
        return x, tuple(hw), (None if m is None else _to_tokens(m))


class _Resampler(nn.Module):
    """PatchMerging / PatchUpsampling: a 3x3 lrelu partial conv with down=2 or up=2 (named `conv`)."""

    dim: int
    down: int
    up: int

    @nn.compact
    def __call__(self, f_BxHxWxC, mask_BxHxWx1):  # -> (f, mask) at H*up/down; mask None for up-sampling
        return PartialConv2d(self.dim, 3, "lrelu", up=self.up, down=self.down, name="conv")(f_BxHxWxC, mask_BxHxWx1)
