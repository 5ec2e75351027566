"""Ablation: a 10x weaker R1 penalty (gamma 1 instead of 10), over configs/places512.py.

Changes `loss.r1_gamma` from 10 to 1 (applied lazily every 16 iterations to both D branches, as the official
recipe). The R1 weight trades D's smoothness against its strength; StyleGAN2-family recipes tune it per dataset and
resolution, and MAT keeps StyleGAN2's 10. `--config.loss.r1_gamma=G` sweeps other values.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.loss.r1_gamma = 1.0  # R1 weight on both D branches (0 switches R1 off)
    return config
