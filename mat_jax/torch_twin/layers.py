"""Equalized-learning-rate building blocks of MAT in PyTorch, with the official parameter names.

Why these exact attributes: `state_dict()` must reproduce the official names, shapes and order, so each
class registers its parameters / buffers / children in the same order as networks/basic_module.py
(reference §1.2–1.9). Stored weights are raw N(0,1)-style values; the runtime gains are applied here.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mat_jax.torch_twin.ops import bias_act, conv2d_resample, setup_filter, upsample2d

__all__ = [
    "FullyConnectedLayer",
    "Conv2dLayer",
    "Conv2dLayerPartial",
    "ModulatedConv2d",
    "StyleConv",
    "ToRGB",
    "MappingNet",
    "NOISE_MODES",
]

NOISE_MODES = ("random", "const", "none")


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (W·lr/√in)ᵀ + b·lr); works on any leading shape ([B, C] or tokens [B, L, C])."""

    def __init__(self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1.0, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.activation = activation
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight * self.weight_gain
        b = self.bias
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        x = x.matmul(w.t())
        if self.activation == "linear":
            return x + b if b is not None else x
        return bias_act(x, b, self.activation, dim=x.ndim - 1)


class Conv2dLayer(nn.Module):
    """Conv k×k with padding k//2, optional 2x down/up, bias + activation; `gain` scales the output."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear", up=1, down=1):
        super().__init__()
        self.activation, self.up, self.down = activation, up, down
        self.register_buffer("resample_filter", setup_filter())
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x, gain=1.0):
        x = conv2d_resample(x, self.weight * self.weight_gain, self.resample_filter, self.up, self.down)
        act_gain = (math.sqrt(2.0) if self.activation == "lrelu" else 1.0) * gain
        return bias_act(x, self.bias, self.activation, gain=act_gain)


class Conv2dLayerPartial(nn.Module):
    """Partial conv (reference §2.2): output rescaled by k²/count(valid) *after* bias+activation.

    mask [B,1,H,W] (1 = known pixel, 0 = hole) or None; returns (y, new_mask or None)."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear", up=1, down=1):
        super().__init__()
        self.conv = Conv2dLayer(in_channels, out_channels, kernel_size, bias, activation, up, down)
        # Not in the official state_dict (a plain attribute there): non-persistent buffer here.
        self.register_buffer("weight_maskUpdater", torch.ones(1, 1, kernel_size, kernel_size), persistent=False)
        self.slide_winsize = kernel_size**2
        self.stride = down
        self.padding = kernel_size // 2 if kernel_size % 2 == 1 else 0

    def forward(self, x, mask=None):
        if mask is None:
            return self.conv(x), None
        with torch.no_grad():
            count = F.conv2d(mask, self.weight_maskUpdater.to(mask.dtype), stride=self.stride, padding=self.padding)
            new_mask = torch.clamp(count, 0, 1)
            # Official: slide/(count + 1e-8) * new_mask, which is 0 where count == 0. The `where` spells
            # that 0 explicitly (same values) because the ONNX exporter drops the 1e-8 and 9/0 * 0 = NaN.
            ratio = self.slide_winsize / (count + 1e-8) * new_mask
            ratio = torch.where(count > 0, ratio, torch.zeros_like(ratio))
        return self.conv(x) * ratio, new_mask


class ModulatedConv2d(nn.Module):
    """Per-sample modulated (optionally demodulated) conv, run as one grouped conv over the batch."""

    def __init__(self, in_channels, out_channels, kernel_size, style_dim, demodulate=True, up=1):
        super().__init__()
        self.demodulate, self.up = demodulate, up
        self.weight = nn.Parameter(torch.randn([1, out_channels, in_channels, kernel_size, kernel_size]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", setup_filter())
        self.affine = FullyConnectedLayer(style_dim, in_channels, bias_init=1)

    def forward(self, x, style):  # x [B, Cin, H, W], style [B, style_dim]
        b, cin = x.shape[:2]
        cout = self.weight.shape[1]
        s = self.affine(style)  # [B, Cin]
        w = self.weight[0] * self.weight_gain  # [Cout, Cin, k, k]
        # conv(x·s, w)·d equals the official per-sample grouped conv with (w·s)·d up to rounding (~1e-7
        # relative), runs as one ordinary batched conv (about 2x faster on CPU) and keeps the batch size
        # dynamic in ONNX. d is computed exactly as the official demodulation.
        y = conv2d_resample(x * s.view(b, cin, 1, 1), w, self.resample_filter, up=self.up)
        if self.demodulate:
            d = ((w[None] * s.view(b, 1, cin, 1, 1)).pow(2).sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [B, Cout]
            y = y * d.view(b, cout, 1, 1)
        return y


class StyleConv(nn.Module):
    """Modulated conv, + noise (before the bias), + bias, lrelu·√2. noise_mode 'none' adds nothing."""

    def __init__(
        self,
        in_channels,
        out_channels,
        style_dim,
        resolution,
        kernel_size=3,
        up=1,
        use_noise=True,
        activation="lrelu",
        demodulate=True,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate, up)
        self.use_noise, self.activation = use_noise, activation
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, style, noise_mode="random"):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = self.conv(x, style)
        if self.use_noise and noise_mode == "random":
            x = x + torch.randn([x.shape[0], 1, x.shape[2], x.shape[3]], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return bias_act(x, self.bias, self.activation)


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation + bias; adds the 2x-upsampled previous image if given."""

    def __init__(self, in_channels, out_channels, style_dim, kernel_size=1, demodulate=False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", setup_filter())

    def forward(self, x, style, skip=None):
        out = bias_act(self.conv(x, style), self.bias)
        if skip is not None:
            if skip.shape != out.shape:
                skip = upsample2d(skip, self.resample_filter)
            out = out + skip
        return out


class MappingNet(nn.Module):
    """z [B, z_dim], c [B, c_dim] -> ws [B, num_ws, w_dim] ([B, w_dim] when num_ws is None).

    2nd-moment normalised z, concatenated with the 2nd-moment normalised `embed(c)` (w_dim features, lr 1)
    when c_dim > 0, then `num_layers` FC+lrelu (lr `lr_multiplier`); `w_avg` (tracked only when num_ws and
    w_avg_beta are given) drives truncation. The discriminator's label mapping is z_dim=0, num_ws=None,
    w_avg_beta=None."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, lr_multiplier=0.01, w_avg_beta=0.995):
        super().__init__()
        if z_dim <= 0 and c_dim <= 0:
            raise ValueError("MappingNet needs z_dim > 0 or c_dim > 0")
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta
        embed = w_dim if c_dim > 0 else 0
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for i in range(num_layers):
            fc = FullyConnectedLayer(
                z_dim + embed if i == 0 else w_dim, w_dim, activation="lrelu", lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{i}", fc)
        self.track_w_avg = num_ws is not None and w_avg_beta is not None
        if self.track_w_avg:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    @staticmethod
    def _normalize(x):  # [B, C]: x / rms(x)
        return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        x = self._normalize(z.to(torch.float32)) if self.z_dim > 0 else None
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this mapping network is conditional (c_dim={self.c_dim}); pass c")
            y = self._normalize(self.embed(c.to(torch.float32)))
            x = y if x is None else torch.cat([x, y], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.track_w_avg and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            if truncation_psi != 1:
                raise ValueError("truncation needs num_ws and a tracked w_avg")
            return x
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if not self.track_w_avg:
                raise ValueError("truncation needs a tracked w_avg (w_avg_beta is None)")
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x
