"""Inception-v3 as the FID feature network: TensorFlow's "2015-12-05" graph (pool_3, 2048-d), Flax, NHWC.

The layer names are those of NVIDIA's TorchScript (`layers.conv`, `layers.mixed_9.tower_mixed_conv`, ...) so the
weights map one to one (`inception_weights.py`). What makes it this graph and not torchvision's Inception-v3:
- every conv is conv (no bias) -> BatchNorm without scale (γ = 1), ε = 1e-3 -> ReLU;
- the 3×3 average pools inside Mixed_5* / 6* / 7b do not count the padding (count_include_pad=False);
- Mixed_7c's pool branch (`mixed_10`) is a 3×3 stride-1 *max* pool;
- the last pool averages the 8×8 map of a 299×299 input (the graph takes 299×299 only).
Convolutions run at HIGHEST precision: on GPUs the TF32 default would move features by ~1e-3.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mat_jax.eval.resize import INCEPTION_SIZE, resize_legacy_bilinear

__all__ = ["ConvBN", "InceptionV3FID", "avg_pool_exclude_pad", "FEATURE_DIM", "BN_EPS", "preprocess_uint8"]

FEATURE_DIM = 2048
BN_EPS = 1e-3


class ConvBN(nn.Module):
    """conv (no bias) -> (x − mean)/√(var + ε) + beta -> ReLU; parameters named as the TorchScript's."""

    features: int
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x_NxHxWxC: jnp.ndarray) -> jnp.ndarray:
        zeros = nn.initializers.zeros  # the weights always come from a file; no RNG needed
        kernel = self.param("kernel", zeros, (*self.kernel, x_NxHxWxC.shape[-1], self.features))  # HWIO
        beta = self.param("beta", zeros, (self.features,))
        mean = self.param("mean", zeros, (self.features,))
        var = self.param("var", nn.initializers.ones, (self.features,))
        (ph, pw) = self.padding
        y = jax.lax.conv_general_dilated(
            x_NxHxWxC,
            kernel,
            (self.stride, self.stride),
            ((ph, ph), (pw, pw)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )
        return nn.relu((y - mean) * jax.lax.rsqrt(var + BN_EPS) + beta)


def avg_pool_exclude_pad(x: jnp.ndarray) -> jnp.ndarray:
    """3×3 stride-1 average pool, padding 1, dividing by the number of real pixels (TF's 'SAME' average pool)."""
    return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_s2(x: jnp.ndarray) -> jnp.ndarray:
    return nn.max_pool(x, (3, 3), (2, 2), padding="VALID")


class Tower(nn.Module):
    """A chain of ConvBN named conv, conv_1, conv_2, ... (a TorchScript Sequential); `pool` first if asked."""

    convs: tuple[tuple, ...]  # (features, kernel, stride, padding) per conv
    pool_first: bool = False

    @nn.compact
    def __call__(self, x):
        if self.pool_first:
            x = avg_pool_exclude_pad(x)
        for i, (features, kernel, stride, padding) in enumerate(self.convs):
            x = ConvBN(features, kernel, stride, padding, name="conv" if i == 0 else f"conv_{i}")(x)
        return x


def _c(features, kernel=(1, 1), stride=1, padding=(0, 0)):
    return (features, kernel, stride, padding)


class InceptionA(nn.Module):  # Mixed_5b/c/d
    pool_features: int

    @nn.compact
    def __call__(self, x):
        return jnp.concatenate(
            [
                ConvBN(64, name="conv")(x),
                Tower((_c(48), _c(64, (5, 5), 1, (2, 2))), name="tower")(x),
                Tower((_c(64), _c(96, (3, 3), 1, (1, 1)), _c(96, (3, 3), 1, (1, 1))), name="tower_1")(x),
                Tower((_c(self.pool_features),), pool_first=True, name="tower_2")(x),
            ],
            axis=-1,
        )


class InceptionB(nn.Module):  # Mixed_6a
    @nn.compact
    def __call__(self, x):
        return jnp.concatenate(
            [
                ConvBN(384, (3, 3), 2, name="conv")(x),
                Tower((_c(64), _c(96, (3, 3), 1, (1, 1)), _c(96, (3, 3), 2)), name="tower")(x),
                _max_pool_s2(x),
            ],
            axis=-1,
        )


class InceptionC(nn.Module):  # Mixed_6b/c/d/e
    c7: int

    @nn.compact
    def __call__(self, x):
        c7, row, col = self.c7, ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))
        return jnp.concatenate(
            [
                ConvBN(192, name="conv")(x),
                Tower((_c(c7), _c(c7, *row), _c(192, *col)), name="tower")(x),
                Tower((_c(c7), _c(c7, *col), _c(c7, *row), _c(c7, *col), _c(192, *row)), name="tower_1")(x),
                Tower((_c(192),), pool_first=True, name="tower_2")(x),
            ],
            axis=-1,
        )


class InceptionD(nn.Module):  # Mixed_7a
    @nn.compact
    def __call__(self, x):
        return jnp.concatenate(
            [
                Tower((_c(192), _c(320, (3, 3), 2)), name="tower")(x),
                Tower(
                    (_c(192), _c(192, (1, 7), 1, (0, 3)), _c(192, (7, 1), 1, (3, 0)), _c(192, (3, 3), 2)),
                    name="tower_1",
                )(x),
                _max_pool_s2(x),
            ],
            axis=-1,
        )


class InceptionE(nn.Module):  # Mixed_7b (average pool branch) / Mixed_7c (max pool branch)
    max_pool_branch: bool

    @nn.compact
    def __call__(self, x):
        a = ConvBN(384, name="tower_conv")(x)
        b = ConvBN(384, (3, 3), 1, (1, 1), name="tower_1_conv_1")(ConvBN(448, name="tower_1_conv")(x))
        if self.max_pool_branch:
            pooled = nn.max_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)))
        else:
            pooled = avg_pool_exclude_pad(x)
        return jnp.concatenate(
            [
                ConvBN(320, name="conv")(x),
                ConvBN(384, (1, 3), 1, (0, 1), name="tower_mixed_conv")(a),
                ConvBN(384, (3, 1), 1, (1, 0), name="tower_mixed_conv_1")(a),
                ConvBN(384, (1, 3), 1, (0, 1), name="tower_1_mixed_conv")(b),
                ConvBN(384, (3, 1), 1, (1, 0), name="tower_1_mixed_conv_1")(b),
                ConvBN(192, name="tower_2_conv")(pooled),
            ],
            axis=-1,
        )


class InceptionV3FID(nn.Module):
    """[N, 299, 299, 3] float32 in [−1, 1) ((x − 128) / 128 of 0–255 pixels) -> [N, 2048] pool_3 features."""

    @nn.compact
    def __call__(self, x_Nx299x299x3: jnp.ndarray) -> jnp.ndarray:
        if x_Nx299x299x3.shape[1:] != (INCEPTION_SIZE, INCEPTION_SIZE, 3):
            raise ValueError(
                f"the FID Inception takes [N, 299, 299, 3] inputs, got {x_Nx299x299x3.shape}; "
                "resize with resize_legacy_bilinear first (or use preprocess_uint8)"
            )
        x = ConvBN(32, (3, 3), 2, name="conv")(x_Nx299x299x3)  # 149
        x = ConvBN(32, (3, 3), name="conv_1")(x)  # 147
        x = ConvBN(64, (3, 3), 1, (1, 1), name="conv_2")(x)
        x = _max_pool_s2(x)  # pool0: 73
        x = ConvBN(80, name="conv_3")(x)
        x = ConvBN(192, (3, 3), name="conv_4")(x)  # 71
        x = _max_pool_s2(x)  # pool1: 35
        x = InceptionA(32, name="mixed")(x)
        x = InceptionA(64, name="mixed_1")(x)
        x = InceptionA(64, name="mixed_2")(x)
        x = InceptionB(name="mixed_3")(x)  # 17
        for i, c7 in enumerate((128, 160, 160, 192)):
            x = InceptionC(c7, name=f"mixed_{4 + i}")(x)
        x = InceptionD(name="mixed_8")(x)  # 8
        x = InceptionE(False, name="mixed_9")(x)
        x = InceptionE(True, name="mixed_10")(x)
        return jnp.mean(x, axis=(1, 2))  # pool2: the 8×8 average


def preprocess_uint8(images_NxHxWx3: jnp.ndarray) -> jnp.ndarray:
    """uint8 RGB at any size -> the network input: TF1 legacy bilinear to 299×299 in float32, then (x − 128)/128,
    as NVIDIA's TorchScript does before its layers."""
    return (resize_legacy_bilinear(images_NxHxWx3) - 128.0) / 128.0
