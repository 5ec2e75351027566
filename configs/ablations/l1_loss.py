"""Ablation: an L1 reconstruction term added to G's loss, over configs/places512.py.

Changes `loss.l1_ratio` from 0 to 1: G also minimises the mean |final - real| over the image. The official MAT has
no pixel loss (only adversarial + perceptual), as large-hole inpainting is pluralistic and a pixel loss pulls the
fill towards the blurry mean; this variant measures that trade (PSNR / L1 up, FID likely worse).
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.loss.l1_ratio = 1.0  # weight of mean |final - real| in G's loss
    return config
