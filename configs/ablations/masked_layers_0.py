"""Ablation: no mask-aware transformer layer (only the partial-conv head sees the mask), over configs/places512.py.

Changes `model.stage1_masked_layers` from 2 to 0: every transformer layer attends over all tokens, holes included,
like `attention_window.py` but keeping MCA's q/k normalisation. The lower bound of the "which stages are
mask-aware" axis of the paper's design.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.stage1_masked_layers = 0  # no transformer layer gets the mask
    return config
