"""The numbers of the MAT architecture that are not learned, computed once (numpy only, no jax/flax).

Used by the Flax model (`models.ops`, `models.attention`, `models.transformer`), the layout table
(`weights.layout`) and the PyTorch twin, so the three cannot drift apart:

* `channels(res)`: the channel table `nf` (official 512:64, 256:128, 128:256, <=64:512);
* `resample_filter()`: the official [1,3,3,1] FIR `resample_filter` buffer;
* `shifted_window_mask(h, w, ws, shift)`: the Swin SW-MSA `attn_mask` buffer;
* `effective_window(size, window, shifted)`: the official window/shift rule of a block.
"""

from __future__ import annotations

import math

import numpy as np

CHANNEL_BASE = 32768  # nf(r) = min(CHANNEL_BASE // r, CHANNEL_MAX): the official table
CHANNEL_MAX = 512
OFFICIAL_NF_RESOLUTIONS = (4, 8, 16, 32, 64, 128, 256, 512)  # the official table has no 1024 entry
SUPPORTED_RESOLUTIONS = (128, 256, 512)  # resolutions the official code builds
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)  # the 1-D resampling filter before normalisation
MASK_NEG = -100.0  # the official additive bias for cross-region pairs / invalid keys (not -inf)


def channels(res: int, channel_base: int = CHANNEL_BASE, channel_max: int = CHANNEL_MAX) -> int:
    """Channels at pixel resolution `res`: min(channel_base // res, channel_max)."""
    return min(channel_base // res, channel_max)


def official_nf(res: int) -> int:
    """The official hard-coded `nf` table: `channels(res)` where the table has an entry, else ValueError."""
    if res not in OFFICIAL_NF_RESOLUTIONS:
        raise ValueError(
            f"MAT has no channel count for resolution {res} (table covers {list(OFFICIAL_NF_RESOLUTIONS)})"
        )
    return channels(res)


def num_ws(resolution: int) -> int:
    """Number of w vectors the mapping broadcasts to: 2*log2(R) - 6 (8/10/12 at 128/256/512)."""
    return 2 * int(math.log2(resolution)) - 6


def resample_filter() -> np.ndarray:
    """The official `resample_filter` buffer: outer([1,3,3,1]) / 64 as float32 [4, 4] (values exact)."""
    a = np.array(FIR_TAPS, dtype=np.float64)
    f = np.outer(a, a)
    return (f / f.sum()).astype(np.float32)


def effective_window(size: int, window: int, shift_requested: bool) -> tuple[int, int]:
    """(window, shift) actually used on a size x size map: a window covering the map is global and
    unshifted (official rule), otherwise shift = window // 2 on shifted blocks."""
    if size <= window:
        return size, 0
    return window, (window // 2 if shift_requested else 0)


def shifted_window_mask(h: int, w: int, ws: int, shift: int) -> np.ndarray:
    """Swin's region mask for a cyclically shifted h x w map: float32 [nW, ws*ws, ws*ws], 0 within one
    region, -100 across regions; windows row-major over the grid, tokens row-major inside a window.

    Equals the official `attn_mask` buffer (the official forward recomputes it for the actual size)."""
    labels = np.zeros((h, w), np.float32)
    cnt = 0
    for hs in (slice(0, h - ws), slice(h - ws, h - shift), slice(h - shift, h)):
        for wsl in (slice(0, w - ws), slice(w - ws, w - shift), slice(w - shift, w)):
            labels[hs, wsl] = cnt
            cnt += 1
    gh, gw = h // ws, w // ws
    win = labels.reshape(gh, ws, gw, ws).transpose(0, 2, 1, 3).reshape(gh * gw, ws * ws)  # [nW, N]
    diff = win[:, None, :] - win[:, :, None]  # [nW, i, j] = label_j - label_i
    return np.where(diff != 0, np.float32(MASK_NEG), np.float32(0.0)).astype(np.float32)
