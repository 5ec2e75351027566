"""PyTorch twin of the official MAT networks (official state_dict names, plain torch ops only).

Why: exported weights must load with `strict=True` into an official-layout PyTorch module, and the
golden data must be reproducible without the official source tree or its CUDA extensions. torch is an
optional extra of mat-jax; nothing else in the package imports this subpackage.

Build the official networks with `Generator(img_resolution=R)` / `Discriminator(img_resolution=R)`, or any
member of the official-architecture family with `Generator.from_config(cfg)` / `Discriminator.from_config(cfg)`
/ `build(cfg, "G" | "D")` from a `mat_jax.models.MATConfig`: their state_dicts have the names and shapes of
`mat_jax.weights.layout.build_table(cfg, net)`, so `variables_to_official(...)` loads with strict=True.
"""

from __future__ import annotations

from mat_jax.torch_twin.discriminator import Discriminator
from mat_jax.torch_twin.synthesis import Generator, SynthesisNet

__all__ = ["Generator", "SynthesisNet", "Discriminator", "build"]


def build(cfg, net: str):
    """The twin network `net` ('G' or 'D') of a `mat_jax.models.MATConfig` (ValueError for a switch it lacks)."""
    if net == "G":
        return Generator.from_config(cfg)
    if net == "D":
        return Discriminator.from_config(cfg)
    raise ValueError(f"net must be 'G' or 'D', got {net!r}")
