"""The official MAT state_dict layout (names, shapes, order, parameter vs buffer), computed in code.

Why: users do not have the golden key files, yet every importer must check a checkpoint against the
exact layout of the official `Generator` / `Discriminator` (networks/mat.py) for a resolution, and the
Flax name table is derived from the same list. The rules below follow the official constructors:

* `state_dict()` order is: a module's own parameters, then its own buffers, then its children in
  registration order (recursively).
* `Generator` registers `synthesis` before `mapping`; every `Conv2dLayer` / `ModulatedConv2d` / `ToRGB`
  owns a `resample_filter` buffer; second-stage `StyleConv`s own `noise_strength` (scalar) and a
  `noise_const [r, r]` buffer; shifted Swin blocks own an `attn_mask [nW, ws*ws, ws*ws]` buffer.
* Channel widths come from the hard-coded `nf` table (no entry for 1024, so 1024 does not exist).

`tests/test_convert_keys.py` checks these lists against the golden JSON files entry by entry.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "Entry",
    "SUPPORTED_RESOLUTIONS",
    "NETS",
    "nf",
    "num_ws",
    "generator_entries",
    "discriminator_entries",
    "expected_entries",
    "resample_filter",
    "shifted_window_mask",
]

SUPPORTED_RESOLUTIONS = (128, 256, 512)
NETS = ("G", "D")

_NF = {512: 64, 256: 128, 128: 256, 64: 512, 32: 512, 16: 512, 8: 512, 4: 512}
_FS_DIM = 180  # first-stage width (constant)
_FS_DEPTHS = (2, 3, 4, 3, 2)
_FS_WINDOWS = (8, 16, 16, 16, 8)
_FS_TOKEN_RES = (64, 32, 16, 32, 64)
_FS_MLP_RATIO = 2
_MAPPING_LAYERS = 8
_RF = (4, 4)  # resample_filter


class Entry(NamedTuple):
    """One state_dict entry: official dotted name, shape, and 'parameter' or 'buffer'."""

    name: str
    shape: tuple[int, ...]
    kind: str


def nf(res: int) -> int:
    """Channel count at pixel resolution `res` (official hard-coded table)."""
    if res not in _NF:
        raise ValueError(f"MAT has no channel count for resolution {res} (table covers {sorted(_NF)})")
    return _NF[res]


def num_ws(resolution: int) -> int:
    """Number of w vectors the mapping broadcasts to: 2*log2(R) - 6 (8/10/12 at 128/256/512)."""
    return 2 * int(math.log2(resolution)) - 6


def _check_resolution(resolution: int) -> int:
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(
            f"unsupported MAT resolution {resolution}; the official code builds {SUPPORTED_RESOLUTIONS}"
        )
    return int(math.log2(resolution))


class _Builder:
    """Collects entries in state_dict order; small helpers mirror the official module types."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def param(self, name: str, *shape: int) -> None:
        self.entries.append(Entry(name, tuple(shape), "parameter"))

    def buffer(self, name: str, *shape: int) -> None:
        self.entries.append(Entry(name, tuple(shape), "buffer"))

    # --- basic layers (networks/basic_module.py) ---
    def fc(self, p: str, cin: int, cout: int, bias: bool = True) -> None:
        self.param(p + "weight", cout, cin)
        if bias:
            self.param(p + "bias", cout)

    def conv(self, p: str, cin: int, cout: int, k: int, bias: bool = True) -> None:
        self.param(p + "weight", cout, cin, k, k)
        if bias:
            self.param(p + "bias", cout)
        self.buffer(p + "resample_filter", *_RF)

    def modconv(self, p: str, cin: int, cout: int, k: int, style_dim: int) -> None:
        self.param(p + "weight", 1, cout, cin, k, k)
        self.buffer(p + "resample_filter", *_RF)
        self.fc(p + "affine.", style_dim, cin)

    def style_conv(self, p: str, cin: int, cout: int, style_dim: int, noise_res: int | None) -> None:
        if noise_res is not None:
            self.param(p + "noise_strength")
        self.param(p + "bias", cout)
        if noise_res is not None:
            self.buffer(p + "noise_const", noise_res, noise_res)
        self.modconv(p + "conv.", cin, cout, 3, style_dim)

    def to_rgb(self, p: str, cin: int, style_dim: int, img_channels: int) -> None:
        self.param(p + "bias", img_channels)
        self.buffer(p + "resample_filter", *_RF)
        self.modconv(p + "conv.", cin, img_channels, 1, style_dim)

    # --- transformer (networks/mat.py) ---
    def swin_block(self, p: str, token_res: int, window: int, shifted: bool) -> None:
        d = _FS_DIM
        if shifted:
            n_windows = (token_res // window) ** 2
            self.buffer(p + "attn_mask", n_windows, window * window, window * window)
        for name in ("q", "k", "v", "proj"):
            self.fc(p + f"attn.{name}.", d, d)
        self.fc(p + "fuse.", 2 * d, d)
        self.fc(p + "mlp.fc1.", d, d * _FS_MLP_RATIO)
        self.fc(p + "mlp.fc2.", d * _FS_MLP_RATIO, d)


def _first_stage(b: _Builder, p: str, resolution: int, w_dim: int, img_channels: int) -> None:
    d = _FS_DIM
    n_down = int(math.log2(resolution // 64))
    b.conv(p + "conv_first.conv.", img_channels + 1, d, 3)
    for i in range(n_down):
        b.conv(p + f"enc_conv.{i}.conv.", d, d, 3)
    for t, (depth, window, res) in enumerate(zip(_FS_DEPTHS, _FS_WINDOWS, _FS_TOKEN_RES, strict=True)):
        tp = p + f"tran.{t}."
        if t > 0:  # PatchMerging (t=1,2) / PatchUpsampling (t=3,4)
            b.conv(tp + "downsample.conv.conv.", d, d, 3)
        eff_window = min(window, res)
        for j in range(depth):
            shifted = j % 2 == 1 and res > window
            b.swin_block(tp + f"blocks.{j}.", res, eff_window, shifted)
        b.conv(tp + "conv.conv.", d, d, 3)
    for i in range(4):
        b.conv(p + f"down_conv.{i}.", d, d, 3)
    b.fc(p + "to_style.", d, 2 * d)
    b.fc(p + "ws_style.", w_dim, d)
    b.fc(p + "to_square.", d, 16 * 16)
    style_dim = 3 * d
    for i in range(n_down):
        dp = p + f"dec_conv.{i}."
        b.style_conv(dp + "conv0.", d, d, style_dim, None)
        b.style_conv(dp + "conv1.", d, d, style_dim, None)
        b.to_rgb(dp + "toRGB.", d, style_dim, img_channels)


def generator_entries(
    resolution: int, z_dim: int = 512, w_dim: int = 512, img_channels: int = 3
) -> list[Entry]:
    """Ordered state_dict entries of official `Generator(z_dim, 0, w_dim, resolution, img_channels)`."""
    log2 = _check_resolution(resolution)
    b = _Builder()
    _first_stage(b, "synthesis.first_stage.", resolution, w_dim, img_channels)
    for r_log2 in range(log2, 3, -1):  # encoder, full res -> 16
        r = 2**r_log2
        ep = f"synthesis.enc.EncConv_Block_{r}x{r}."
        if r_log2 == log2:  # EncFromRGB on [mask-0.5, composite, masked image]
            b.conv(ep + "conv0.", 2 * img_channels + 1, nf(r), 1)
        else:  # ConvBlockDown
            b.conv(ep + "conv0.", nf(2 * r), nf(r), 3)
        b.conv(ep + "conv1.", nf(r), nf(r), 3)
    b.fc("synthesis.to_square.", w_dim, 16 * 16)
    for i in range(3):
        b.conv(f"synthesis.to_style.conv.{i}.", nf(16), nf(16), 3)
    b.fc("synthesis.to_style.fc.", nf(16), 2 * nf(4))
    style_dim = w_dim + 2 * nf(4)
    b.conv("synthesis.dec.Dec_16x16.conv0.", nf(16), nf(16), 3)
    b.style_conv("synthesis.dec.Dec_16x16.conv1.", nf(16), nf(16), style_dim, 16)
    b.to_rgb("synthesis.dec.Dec_16x16.toRGB.", nf(16), style_dim, img_channels)
    for r_log2 in range(5, log2 + 1):
        r = 2**r_log2
        dp = f"synthesis.dec.Dec_{r}x{r}."
        b.style_conv(dp + "conv0.", nf(r // 2), nf(r), style_dim, r)
        b.style_conv(dp + "conv1.", nf(r), nf(r), style_dim, r)
        b.to_rgb(dp + "toRGB.", nf(r), style_dim, img_channels)
    b.buffer("mapping.w_avg", w_dim)  # MappingNet's own buffer precedes its fc children
    for i in range(_MAPPING_LAYERS):
        b.fc(f"mapping.fc{i}.", z_dim if i == 0 else w_dim, w_dim)
    return b.entries


def discriminator_entries(resolution: int, img_channels: int = 3) -> list[Entry]:
    """Ordered state_dict entries of the two-branch official `Discriminator(0, resolution, img_channels)`."""
    log2 = _check_resolution(resolution)
    b = _Builder()
    for prefix, fc_suffix, div in (("Dis", "", 1), ("Dis_stg1", "_stg1", 2)):
        b.conv(f"{prefix}.0.conv.", img_channels + 1, nf(resolution) // div, 1)  # DisFromRGB
        for i, r_log2 in enumerate(range(log2, 2, -1), start=1):  # DisBlock R -> R/2, down to 4x4
            cin, cout = nf(2**r_log2) // div, nf(2 ** (r_log2 - 1)) // div
            b.conv(f"{prefix}.{i}.conv0.", cin, cin, 3)
            b.conv(f"{prefix}.{i}.conv1.", cin, cout, 3)
            b.conv(f"{prefix}.{i}.skip.", cin, cout, 1, bias=False)
        # index log2-1 is the minibatch-std layer (no entries)
        b.conv(f"{prefix}.{log2}.", nf(4) // div + 1, nf(4) // div, 3)
        b.fc(f"fc0{fc_suffix}.", nf(4) // div * 16, nf(4) // div)
        b.fc(f"fc1{fc_suffix}.", nf(4) // div, 1)
    return b.entries


def expected_entries(net: str, resolution: int) -> list[Entry]:
    """Entries for net 'G' (also used for G_ema) or 'D' at `resolution` (128, 256 or 512)."""
    if net in ("G", "G_ema"):
        return generator_entries(resolution)
    if net == "D":
        return discriminator_entries(resolution)
    raise ValueError(f"unknown net {net!r}; expected one of G, G_ema, D")


def resample_filter() -> np.ndarray:
    """The official [1,3,3,1] FIR as a normalised 4x4 float32 kernel (every value exact in float32)."""
    a = np.array([1.0, 3.0, 3.0, 1.0])
    return (np.outer(a, a) / 64.0).astype(np.float32)


def shifted_window_mask(size: int, window: int, shift: int | None = None) -> np.ndarray:
    """Swin SW-MSA additive mask [nW, window**2, window**2] (0 same region, -100 otherwise) for a square
    `size` x `size` token map; windows row-major over the grid, tokens row-major inside a window."""
    shift = window // 2 if shift is None else shift
    labels = np.zeros((size, size), np.float32)
    bounds = ((0, size - window), (size - window, size - shift), (size - shift, size))
    for i, (h0, h1) in enumerate(bounds):
        for j, (w0, w1) in enumerate(bounds):
            labels[h0:h1, w0:w1] = 3 * i + j
    g = size // window
    win = labels.reshape(g, window, g, window).transpose(0, 2, 1, 3).reshape(g * g, window * window)
    diff = win[:, None, :] - win[:, :, None]
    return np.where(diff != 0, np.float32(-100.0), np.float32(0.0)).astype(np.float32)
