"""Ablation: the conventional pre-LayerNorm Swin block with residuals instead of MAT's adjusted block.

Changes `model.block` from "adjusted" to "prenorm_residual" over configs/places512.py. The paper removes LayerNorm
(most tokens inside a large hole are near zero and normalising magnifies them, destabilising training) and replaces
the residual with concatenation + fusion (a residual biases the block towards high-frequency refinement, hard when
most tokens start invalid). This variant puts both back. It adds LayerNorm parameters (no longer the official layout).
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.block = "prenorm_residual"  # LN -> attention -> + x, LN -> MLP -> + x
    return config
