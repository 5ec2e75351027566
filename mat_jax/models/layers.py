"""Equalized-learning-rate building blocks of MAT (NHWC), one official module each.

Raw weights are stored as initialised (N(0,1) / lr_multiplier) and the equalized-LR gains are
applied at run time, as in the official code: Adam's dynamics depend on that split, and it keeps
the stored values identical to the official state_dict (up to layout: FC [in,out], conv HWIO).
"""

from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from mat_jax.models import ops

Array = jax.Array


def conv_algorithm(module: nn.Module) -> str:
    """The convolution algorithm of the network a layer belongs to: `cfg.conv` of the nearest enclosing module that
    holds a `MATConfig` (static, so part of what jit traces); 'auto' for a layer used on its own."""
    m = module
    while isinstance(m, nn.Module):
        cfg = getattr(m, "cfg", None)
        if cfg is not None and hasattr(cfg, "conv"):
            return cfg.conv
        m = m.parent
    return "auto"


def _normal_init(scale: float) -> Callable:
    def init(key, shape, dtype=jnp.float32):
        return jax.random.normal(key, shape, dtype) * scale

    return init


class EqDense(nn.Module):
    """FullyConnectedLayer: y = act(x @ (W * lr/sqrt(in)) + b * lr) * default_gain. W stored [in, out]."""

    features: int
    act: str = "linear"
    lr_multiplier: float = 1.0
    bias_init: float = 0.0
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:  # [..., in] -> [..., out]
        fan_in = x.shape[-1]
        w = self.param("weight", _normal_init(1.0 / self.lr_multiplier), (fan_in, self.features))
        y = x @ (w * (self.lr_multiplier / math.sqrt(fan_in))).astype(x.dtype)
        b = None
        if self.use_bias:
            b = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
            b = b * self.lr_multiplier if self.lr_multiplier != 1 else b
        return ops.bias_act(y, b, self.act)


class EqConv2d(nn.Module):
    """Conv2dLayer: conv2d_resample(x, W / sqrt(in*k*k)) then bias + act with gain default*`gain`."""

    features: int
    kernel_size: int
    act: str = "linear"
    up: int = 1
    down: int = 1
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: Array, gain: float = 1.0) -> Array:  # [B,H,W,Cin] -> [B,H',W',Cout]
        k, cin = self.kernel_size, x.shape[-1]
        w = self.param("weight", _normal_init(1.0), (k, k, cin, self.features))
        y = ops.conv2d_resample(x, w * (1.0 / math.sqrt(cin * k * k)), self.up, self.down, conv_algorithm(self))
        b = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        return ops.bias_act(y, b, self.act, gain=ops.default_gain(self.act) * gain)


class PartialConv2d(nn.Module):
    """Conv2dLayerPartial: a conv whose output is rescaled by k^2 / (#valid inputs in its window).

    mask: [B,H,W,1], 1 = known pixel, 0 = hole. The rescaling is applied *after* bias+activation and
    the input is not re-masked (official behaviour). Windows without any valid pixel output 0 and
    become invalid; the new mask is min(count, 1). For up=2 the official code never passes a mask.
    """

    features: int
    kernel_size: int = 3
    act: str = "lrelu"
    up: int = 1
    down: int = 1

    @nn.compact
    def __call__(self, x: Array, mask: Array | None = None):
        y = EqConv2d(self.features, self.kernel_size, self.act, self.up, self.down, name="conv")(x)
        if mask is None:
            return y, None
        if self.up != 1:
            raise ValueError("PartialConv2d: a mask is not supported with up-sampling (as in the official code)")
        k = self.kernel_size
        mask = jax.lax.stop_gradient(mask)
        count = ops.box_count(mask.astype(jnp.float32), k, self.down)  # [B,H',W',1]
        new_mask = jnp.clip(count, 0.0, 1.0)
        ratio = (k * k) / (count + 1e-8) * new_mask
        return y * ratio.astype(y.dtype), new_mask


class ModulatedConv2d(nn.Module):
    """Style-modulated conv (optionally demodulated), computed in the non-grouped form
    conv(x * s, W * g) * d, which equals the official per-sample grouped conv up to rounding."""

    features: int
    kernel_size: int
    demodulate: bool = True
    up: int = 1

    @nn.compact
    def __call__(self, x: Array, style: Array) -> Array:  # x [B,H,W,Cin], style [B,S]
        k, cin = self.kernel_size, x.shape[-1]
        w = self.param("weight", _normal_init(1.0), (k, k, cin, self.features))
        s = EqDense(cin, bias_init=1.0, name="affine")(style)  # [B, Cin]
        wg = w * (1.0 / math.sqrt(cin * k * k))
        y = ops.conv2d_resample(x * s[:, None, None, :].astype(x.dtype), wg, self.up, 1, conv_algorithm(self))
        if self.demodulate:
            wsq = jnp.sum(jnp.square(wg.astype(jnp.float32)), axis=(0, 1))  # [Cin, Cout]
            d = jax.lax.rsqrt(jnp.square(s.astype(jnp.float32)) @ wsq + 1e-8)  # [B, Cout]
            y = y * d[:, None, None, :].astype(y.dtype)
        return y


class StyleConv(nn.Module):
    """Modulated conv + per-pixel noise (before the bias) + bias + lrelu*sqrt(2).

    noise_mode: 'random' (N(0,1) [B,H,W,1] from the 'noise' RNG stream, or `noise` if given),
    'const' (the `noise_const` buffer), 'none' (nothing; the official code crashes here).
    """

    features: int
    kernel_size: int = 3
    up: int = 1
    use_noise: bool = True
    resolution: int = 0  # Output side, for the noise_const buffer.

    @nn.compact
    def __call__(self, x: Array, style: Array, noise_mode: str = "random", noise: Array | None = None):
        y = ModulatedConv2d(self.features, self.kernel_size, True, self.up, name="conv")(x, style)
        if self.use_noise:
            strength = self.param("noise_strength", nn.initializers.zeros, ())
            const = self.variable(
                "buffers",
                "noise_const",
                lambda: jax.random.normal(self.make_rng("params"), (self.resolution, self.resolution)),
            )
            b, h, w, _ = y.shape
            if noise_mode == "random":
                if noise is None:
                    noise = jax.random.normal(self.make_rng("noise"), (b, h, w, 1), jnp.float32)
                y = y + (noise * strength).astype(y.dtype)
            elif noise_mode == "const":
                if const.value.shape != (h, w):
                    raise ValueError(
                        f"noise_mode='const' needs a {const.value.shape} map but the layer runs at {(h, w)}"
                    )
                y = y + (const.value * strength)[None, :, :, None].astype(y.dtype)
            elif noise_mode != "none":
                raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return ops.bias_act(y, bias, "lrelu")


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation + bias; adds the 2x-upsampled skip image if given."""

    features: int = 3

    @nn.compact
    def __call__(self, x: Array, style: Array, skip: Array | None = None) -> Array:
        y = ModulatedConv2d(self.features, 1, demodulate=False, name="conv")(x, style)
        y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(y.dtype)
        if skip is not None:
            if skip.shape != y.shape:
                skip = ops.upsample2d(skip)
            y = y + skip
        return y
