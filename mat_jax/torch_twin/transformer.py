"""MAT's adjusted Swin transformer (first stage body), official parameter names (reference §2.3–2.6).

Why it differs from a stock Swin: no LayerNorm, no residual inside the block (out = mlp(fuse([x, attn]))),
q/k from the L2-normalised input but v from the raw input, and a key-only mask bias of −100 with a
window-level OR mask update (multi-head contextual attention). Tokens are [B, L, C] with row-major L.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mat_jax.models.constants import shifted_window_mask
from mat_jax.torch_twin.layers import Conv2dLayerPartial, FullyConnectedLayer

__all__ = ["feature2token", "token2feature", "BasicLayer", "PatchMerging", "PatchUpsampling"]


def feature2token(x):  # [B, C, H, W] -> [B, H*W, C]
    b, c = x.shape[:2]
    return x.reshape(b, c, -1).transpose(1, 2)


def token2feature(x, x_size):  # [B, H*W, C] -> [B, C, H, W]
    b, _, c = x.shape
    return x.permute(0, 2, 1).reshape(b, c, x_size[0], x_size[1])


def window_partition(x, ws):  # [B, H, W, C] -> [B*nW, ws, ws, C], window index b*nW + row-major grid
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, c)


def window_reverse(windows, ws, h, w):  # inverse of window_partition
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = FullyConnectedLayer(in_features, hidden_features, activation="lrelu")
        self.fc2 = FullyConnectedLayer(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.fc1(x))


class WindowAttention(nn.Module):
    """Multi-head contextual attention on windows x [Bw, N, C]; mask_windows [Bw, N, 1] or None.

    mask_update 'window_or' (official): a window becomes valid once any of its keys is; 'none': static mask."""

    def __init__(self, dim, num_heads, mask_update="window_or"):
        super().__init__()
        self.num_heads, self.mask_update = num_heads, mask_update
        self.scale = (dim // num_heads) ** -0.5
        self.q = FullyConnectedLayer(dim, dim)
        self.k = FullyConnectedLayer(dim, dim)
        self.v = FullyConnectedLayer(dim, dim)
        self.proj = FullyConnectedLayer(dim, dim)

    def forward(self, x, mask_windows=None, shift_mask=None):
        bw, n, c = x.shape
        h = self.num_heads
        xn = F.normalize(x, p=2.0, dim=-1)
        q = self.q(xn).reshape(bw, n, h, c // h).permute(0, 2, 1, 3)  # [Bw, h, N, d]
        k = self.k(xn).reshape(bw, n, h, c // h).permute(0, 2, 3, 1)  # [Bw, h, d, N]
        v = self.v(x).reshape(bw, n, h, c // h).permute(0, 2, 1, 3)
        attn = (q @ k) * self.scale  # [Bw, h, N, N]
        if shift_mask is not None:  # [nW, N, N], windows of one image are the inner index
            nw = shift_mask.shape[0]
            attn = (attn.view(bw // nw, nw, h, n, n) + shift_mask[None, :, None]).view(bw, h, n, n)
        if mask_windows is not None:
            mask_windows = mask_windows.detach()  # the mask carries no gradient (official: no_grad)
            m = mask_windows.squeeze(-1)[:, None, None, :]  # keys only: [Bw, 1, 1, N]
            # -100 for holes, 0 for known; a fractional mask value is added as is (official quirk).
            attn = attn + torch.where(m == 0, torch.full_like(m, -100.0), torch.where(m == 1, torch.zeros_like(m), m))
            if self.mask_update == "window_or":
                mask_windows = torch.clamp(mask_windows.sum(dim=1, keepdim=True), 0, 1).repeat(1, n, 1)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(x), mask_windows


class SwinTransformerBlock(nn.Module):
    """out = mlp(fuse([x, W-MSA(x)])); odd blocks shift windows by ws/2 (unless the window covers the map).

    global_window (attention='full'): one unshifted window over the whole (square) map of the actual input."""

    def __init__(
        self,
        dim,
        input_resolution,
        num_heads,
        window_size,
        shift_size,
        mlp_ratio=2.0,
        mask_update="window_or",
        global_window=False,
    ):
        super().__init__()
        self.input_resolution = tuple(input_resolution)
        self.window_size, self.shift_size, self.global_window = window_size, shift_size, global_window
        if global_window or min(self.input_resolution) <= window_size:
            self.window_size, self.shift_size = min(self.input_resolution), 0
        self.attn = WindowAttention(dim, num_heads, mask_update)
        self.fuse = FullyConnectedLayer(dim * 2, dim, activation="lrelu")
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        attn_mask = None
        if self.shift_size > 0:
            side = self.input_resolution[0]
            attn_mask = torch.from_numpy(shifted_window_mask(side, side, self.window_size, self.shift_size))
        self.register_buffer("attn_mask", attn_mask)  # None for unshifted blocks: not in the state_dict

    def _shift_mask(self, x_size, device):
        if self.shift_size == 0:
            return None
        if tuple(x_size) == self.input_resolution:
            return self.attn_mask
        if x_size[0] != x_size[1]:
            raise NotImplementedError("shifted windows on non-square token maps")
        return torch.from_numpy(shifted_window_mask(x_size[0], x_size[0], self.window_size, self.shift_size)).to(device)

    def forward(self, x, x_size, mask=None):  # x [B, L, C], mask [B, L, 1] or None
        hh, ww = x_size
        b, _, c = x.shape
        ws, sh = self.window_size, self.shift_size
        if self.global_window:
            if hh != ww:
                raise ValueError(f"attention='full' needs a square token map, got {tuple(x_size)}")
            ws = hh
        shortcut = x
        x = x.view(b, hh, ww, c)
        if mask is not None:
            mask = mask.view(b, hh, ww, 1)
        if sh > 0:
            x = torch.roll(x, shifts=(-sh, -sh), dims=(1, 2))
            if mask is not None:
                mask = torch.roll(mask, shifts=(-sh, -sh), dims=(1, 2))
        x_win = window_partition(x, ws).view(-1, ws * ws, c)
        m_win = window_partition(mask, ws).view(-1, ws * ws, 1) if mask is not None else None
        attn_win, m_win = self.attn(x_win, m_win, self._shift_mask(x_size, x.device))
        x = window_reverse(attn_win.view(-1, ws, ws, c), ws, hh, ww)
        if mask is not None:
            mask = window_reverse(m_win.view(-1, ws, ws, 1), ws, hh, ww)
        if sh > 0:
            x = torch.roll(x, shifts=(sh, sh), dims=(1, 2))
            if mask is not None:
                mask = torch.roll(mask, shifts=(sh, sh), dims=(1, 2))
        x = x.reshape(b, hh * ww, c)
        if mask is not None:
            mask = mask.reshape(b, hh * ww, 1)
        x = self.mlp(self.fuse(torch.cat([shortcut, x], dim=-1)))
        return x, mask


class PatchMerging(nn.Module):
    """Tokens -> map -> partial conv 3x3 stride 2 -> tokens; x_size halves."""

    def __init__(self, in_channels, out_channels, down=2):
        super().__init__()
        self.conv = Conv2dLayerPartial(in_channels, out_channels, 3, activation="lrelu", down=down)
        self.down = down

    def forward(self, x, x_size, mask=None):
        x, mask = self.conv(token2feature(x, x_size), token2feature(mask, x_size) if mask is not None else None)
        x_size = (x_size[0] // self.down, x_size[1] // self.down)
        return feature2token(x), x_size, feature2token(mask) if mask is not None else None


class PatchUpsampling(nn.Module):
    """Tokens -> map -> conv 3x3 up 2 -> tokens; x_size doubles (never receives a mask in MAT)."""

    def __init__(self, in_channels, out_channels, up=2):
        super().__init__()
        self.conv = Conv2dLayerPartial(in_channels, out_channels, 3, activation="lrelu", up=up)
        self.up = up

    def forward(self, x, x_size, mask=None):
        if mask is not None:
            raise ValueError("PatchUpsampling does not resample masks (the official code never passes one)")
        x, _ = self.conv(token2feature(x, x_size))
        return feature2token(x), (x_size[0] * self.up, x_size[1] * self.up), None


class BasicLayer(nn.Module):
    """[resample] -> blocks -> partial conv 3x3 -> + identity (the only residual in the transformer).

    attention: 'mca' (official) masked windows | 'window' windows without the mask (the mask only reaches the
    partial conv) | 'full' one masked window over the whole map. mask_update: see WindowAttention."""

    def __init__(
        self,
        dim,
        input_resolution,
        depth,
        num_heads,
        window_size,
        downsample=None,
        mlp_ratio=2.0,
        shifted=True,
        attention="mca",
        mask_update="window_or",
    ):
        super().__init__()
        if attention not in ("mca", "window", "full"):
            raise ValueError(f"attention must be 'mca', 'window' or 'full', got {attention!r}")
        if mask_update not in ("window_or", "none"):
            raise ValueError(f"mask_update must be 'window_or' or 'none', got {mask_update!r}")
        self.downsample, self.attention = downsample, attention
        full = attention == "full"
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim,
                input_resolution,
                num_heads,
                window_size,
                window_size // 2 if shifted and i % 2 == 1 and not full else 0,
                mlp_ratio,
                mask_update,
                full,
            )
            for i in range(depth)
        )
        self.conv = Conv2dLayerPartial(dim, dim, 3, activation="lrelu")

    def forward(self, x, x_size, mask=None):
        if self.downsample is not None:
            x, x_size, mask = self.downsample(x, x_size, mask)
        identity = x
        attn_mask = mask if self.attention != "window" else None
        for blk in self.blocks:
            x, new_mask = blk(x, x_size, attn_mask)
            if attn_mask is not None:
                attn_mask = new_mask
        if attn_mask is not None:
            mask = attn_mask
        y, mask = self.conv(token2feature(x, x_size), token2feature(mask, x_size) if mask is not None else None)
        return feature2token(y) + identity, x_size, feature2token(mask) if mask is not None else None
