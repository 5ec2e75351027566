"""Plain-PyTorch versions of the few StyleGAN2-ADA ops MAT uses (no custom CUDA kernels).

Why: the official code routes every conv through `conv2d_resample` / `upfirdn2d` / `bias_act`, which
compile CUDA extensions or fall back to generic reference paths. MAT needs only five cases (reference
§1.4), each written here directly with `F.conv2d`, `F.conv_transpose2d` and `F.pad`, which keeps the
twin importable anywhere torch is and traceable by `torch.onnx.export`.

All tensors NCHW. `f` is the 4x4 normalised [1,3,3,1] filter (symmetric, so flipping never matters).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mat_jax.models.constants import resample_filter

__all__ = ["LRELU_GAIN", "bias_act", "fir", "upsample2d", "conv2d_resample", "setup_filter"]

LRELU_GAIN = math.sqrt(2.0)  # default gain of lrelu in bias_act; linear has gain 1
_DEFAULT_GAIN = {"linear": 1.0, "lrelu": LRELU_GAIN}


def setup_filter() -> torch.Tensor:
    """The [1,3,3,1] outer-product filter / 64 as float32 [4, 4] (`models.constants.resample_filter`)."""
    return torch.from_numpy(resample_filter())


def bias_act(x: torch.Tensor, b: torch.Tensor | None, act: str = "linear", gain: float | None = None, dim: int = 1):
    """Add bias along `dim`, apply `act` (linear / lrelu with slope 0.2), multiply by `gain` (default gain
    of the activation when None). No clamp: MAT never sets conv_clamp."""
    if act not in _DEFAULT_GAIN:
        raise ValueError(f"activation {act!r} is not used by MAT")
    if b is not None:
        x = x + b.reshape([-1 if i == dim % x.ndim else 1 for i in range(x.ndim)])
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    gain = _DEFAULT_GAIN[act] if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    return x


def fir(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int, int, int], stride: int = 1, gain: float = 1.0):
    """Zero-pad (left, right, top, bottom), then depthwise-correlate every channel with `f * gain`."""
    c = x.shape[1]
    w = (f * gain).to(x.dtype)[None, None].expand(c, 1, *f.shape)
    return F.conv2d(F.pad(x, list(pad)), w, stride=stride, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Filter-only 2x upsampling (ToRGB skip path): zero-stuff, pad (2, 1), correlate with 4·f. [B,C,H,W] ->
    [B,C,2H,2W]."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h, 1, w, 1)
    x = F.pad(x, [0, 1, 0, 0, 0, 1])  # a zero after every sample in both spatial dims
    x = x.reshape(b, c, 2 * h, 2 * w)
    return fir(x, f, (2, 1, 2, 1), gain=4.0)


def conv2d_resample(
    x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1, groups: int = 1
) -> torch.Tensor:
    """Conv with the layer's own padding k//2 and optional 2x down/up resampling, MAT's cases only.

    x [B, Cin, H, W], w [Cout, Cin/groups, k, k] -> [B, Cout, H*up/down, W*up/down]."""
    k = w.shape[-1]
    p = k // 2
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=p, groups=groups)
    if down == 2 and up == 1 and k == 1:  # DisBlock.skip: blur + decimate, then 1x1
        return F.conv2d(fir(x, f, (1, 1, 1, 1), stride=2), w, groups=groups)
    if down == 2 and up == 1:  # blur with pad p+1 on every side (H+1), then stride-2 conv without padding
        return F.conv2d(fir(x, f, (p + 1,) * 4), w, stride=2, groups=groups)
    if up == 2 and down == 1 and k == 3:
        # Correlating the zero-stuffed input (pad 2) with the unflipped kernel == a stride-2 transposed
        # conv with the spatially flipped kernel (-> 2H+1); then pad 1 and blur with 4·f (-> 2H).
        cout, cin_g = w.shape[0], w.shape[1]
        wt = (
            w.reshape(groups, cout // groups, cin_g, k, k).transpose(1, 2).reshape(groups * cin_g, cout // groups, k, k)
        )
        x = F.conv_transpose2d(x, wt.flip([2, 3]), stride=2, groups=groups)
        return fir(x, f, (1, 1, 1, 1), gain=4.0)
    raise NotImplementedError(f"conv2d_resample(k={k}, up={up}, down={down}) is not a case MAT uses")
