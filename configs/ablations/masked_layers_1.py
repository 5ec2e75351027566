"""Ablation: only the first transformer layer (tran.0) is mask-aware, over configs/places512.py.

Changes `model.stage1_masked_layers` from 2 to 1: tran.1 attends without the mask (and does not update it). The
official network feeds the mask to both encoder layers; the paper's question is how far into the encoder the
mask-aware aggregation needs to reach before validity has spread enough.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.stage1_masked_layers = 1  # tran.0 masked; tran.1 .. tran.4 unmasked
    return config
