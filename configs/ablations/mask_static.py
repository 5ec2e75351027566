"""Ablation: static mask (no dynamic mask update) in MCA, over configs/places512.py.

Changes `model.mask_update` from "window_or" to "none": attention stays masked, but a window's validity never grows
from one block to the next, so hole tokens stay excluded as keys through tran.0 / tran.1. The paper motivates the
dynamic update (a window becomes valid once any of its tokens is) as how information propagates into large holes.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.mask_update = "none"  # the mask entering a layer is the mask of every block in it
    return config
