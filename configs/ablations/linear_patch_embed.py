"""Ablation: a ViT-style linear patch embedding instead of MAT's convolutional head, over configs/places512.py.

Changes `model.stage1_embed` from "conv" to "linear_patch": the 8x8 patches of [mask, masked image] (512 -> 64x64
tokens) are embedded by one linear map, with no partial convolutions, so the stage-1 decoder gets no encoder skips.
The paper's supplement reports that the conv head (fast down-sampling with local inductive bias) beats a linear
patch embedding. Weights export under their Flax path names; the PyTorch twin does not build this variant.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.stage1_embed = "linear_patch"  # one linear map per 8x8 patch (4 input channels)
    return config
