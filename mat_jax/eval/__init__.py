"""Offline evaluation as the official MAT scripts compute it: FID, P-IDS / U-IDS, KID, PSNR / SSIM / L1, LPIPS.

The metric functions are numpy / scipy / scikit-learn and take features or uint8 images; `EvalAccumulator`
streams image pairs and merges across hosts. The Inception feature network and its input resize are JAX, as are
LPIPS and the sharded inpaint-and-measure `Evaluator` behind `mat-jax eval` and training's `config.eval`.

    from mat_jax.eval import EvalAccumulator, InceptionExtractor, LPIPS
    acc = EvalAccumulator(InceptionExtractor("inception.npz"), LPIPS("lpips.safetensors"))
    acc.update(real_u8, fake_u8)          # [N, H, W, 3] uint8 each, any number of times; acc.merge(other)
    scores = acc.result()                 # {'fid': Score(value, note), 'psnr': ..., ...}

The names below load on first use, so `import mat_jax.eval` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EvalAccumulator": "accumulator",
    "InceptionExtractor": "extractor",
    "inception_features": "extractor",
    "LPIPS": "lpips",
    "fid_from_features": "fid",
    "fid_from_stats": "fid",
    "frechet_distance": "fid",
    "FeatureStats": "fid",
    "discriminative_scores": "ids",
    "kernel_inception_distance": "kid",
    "psnr": "pixel",
    "ssim": "pixel",
    "l1": "pixel",
    "pixel_metrics": "pixel",
    "Score": "score",
    "Evaluator": "runner",
    "EvalConfig": "protocol",
    "EvalSet": "protocol",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mat_jax.eval' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mat_jax.eval.{_EXPORTS[name]}"), name)
