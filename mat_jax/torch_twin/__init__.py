"""PyTorch twin of the official MAT networks (official state_dict names, plain torch ops only).

Why: exported weights must load with `strict=True` into an official-layout PyTorch module, and the
golden data must be reproducible without the official source tree or its CUDA extensions. torch is an
optional extra of mat-jax; nothing else in the package imports this subpackage.
"""

from mat_jax.torch_twin.discriminator import Discriminator
from mat_jax.torch_twin.synthesis import Generator, SynthesisNet

__all__ = ["Generator", "SynthesisNet", "Discriminator"]
