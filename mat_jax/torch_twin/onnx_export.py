"""ONNX export of the twin generator, with the two SMM maps as explicit graph inputs.

Why the maps are inputs: the official generator draws them with dropout on every call; inside an ONNX
graph that would be a RandomUniform node whose values no runtime reproduces. As inputs, a caller can
pass recorded maps (parity), all ones (deterministic inpainting: no noise mixing) or its own Bernoulli
draws (pluralistic results). Batch size and resolution are fixed at export time (no dynamic axes are
declared; the constant noise has the trained size anyway).

Needs the `onnx` package (and `onnxscript` for the default dynamo exporter); neither is a dependency
of mat-jax.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import torch
import torch.nn as nn

from mat_jax.torch_twin.synthesis import Generator

__all__ = ["GeneratorForOnnx", "export_onnx", "export_onnx_from_state", "ONNX_INPUTS", "ONNX_OUTPUTS"]

ONNX_INPUTS = ("images", "masks", "z", "smm_map_stage1", "smm_map_stage2")
ONNX_OUTPUTS = ("img", "img_stg1")


class GeneratorForOnnx(nn.Module):
    """(images [B,3,R,R], masks [B,1,R,R] 1 = known, z [B,512], map1 [B,256,180], map2 [B,512,16,16])
    -> (final image [B,3,R,R], stage-1 image [B,3,R,R]); truncation and noise mode fixed at export."""

    def __init__(self, generator: Generator, truncation_psi: float = 1.0, noise_mode: str = "const"):
        super().__init__()
        self.generator, self.truncation_psi, self.noise_mode = generator, truncation_psi, noise_mode

    def forward(self, images, masks, z, smm_map_stage1, smm_map_stage2):
        return self.generator(
            images,
            masks,
            z,
            None,
            truncation_psi=self.truncation_psi,
            skip_w_avg_update=True,
            noise_mode=self.noise_mode,
            return_stg1=True,
            smm_maps=(smm_map_stage1, smm_map_stage2),
        )


def example_inputs(resolution: int, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Inputs of the right shapes: a half-masked image, z = 0 and all-ones SMM maps (no mixing)."""
    masks = torch.ones(batch, 1, resolution, resolution)
    masks[..., resolution // 4 : 3 * resolution // 4, resolution // 4 : 3 * resolution // 4] = 0
    return (
        torch.zeros(batch, 3, resolution, resolution),
        masks,
        torch.zeros(batch, 512),
        torch.ones(batch, 256, 180),
        torch.ones(batch, 512, 16, 16),
    )


def export_onnx(
    generator: Generator,
    path: str | os.PathLike,
    batch: int = 1,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    opset: int = 18,
    dynamo: bool = True,
) -> None:
    """Write `generator` (eval mode, fp32) as an ONNX graph with inputs `ONNX_INPUTS`, outputs
    `ONNX_OUTPUTS`; the weights go to `<path>.data` beside it (external data). `noise_mode` 'random' is
    refused: its randn nodes could not be replayed. `dynamo=False` (the TorchScript exporter) fails on
    the depthwise FIR convs ("kernel of unknown shape"); the dynamo exporter needs `onnxscript`."""
    if noise_mode not in ("const", "none"):
        raise ValueError("export with noise_mode 'const' or 'none'; random noise cannot be reproduced in ONNX")
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it; fail early with a clear message)
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install onnx (and onnxscript for dynamo)") from None
    wrapper = GeneratorForOnnx(generator.eval(), truncation_psi, noise_mode).eval()
    inputs = example_inputs(generator.img_resolution, batch)
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            inputs,
            os.fspath(path),
            input_names=list(ONNX_INPUTS),
            output_names=list(ONNX_OUTPUTS),
            opset_version=opset,
            dynamo=dynamo,
        )


def export_onnx_from_state(state: dict[str, np.ndarray], path: str | os.PathLike, resolution: int) -> None:
    """Build the twin from an official-name G state dict (float32) and export it; the graph and its
    `.data` file are written in a temporary folder beside `path` and moved into place only on success."""
    with torch.device("meta"):
        g = Generator(img_resolution=resolution)
    tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in state.items()}
    g.load_state_dict(tensors, strict=True, assign=True)
    for sub in g.modules():  # the all-ones partial-conv kernel is not in the state dict
        if hasattr(sub, "weight_maskUpdater"):
            sub.weight_maskUpdater = torch.ones(sub.weight_maskUpdater.shape)
    path = os.fspath(path)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".onnx-export-")
    try:
        tmp_path = os.path.join(tmp, os.path.basename(path))
        export_onnx(g, tmp_path)
        for name in sorted(os.listdir(tmp)):  # the graph and its external-data file(s)
            os.replace(os.path.join(tmp, name), os.path.join(os.path.dirname(os.path.abspath(path)), name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
