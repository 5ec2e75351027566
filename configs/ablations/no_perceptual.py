"""Ablation: no perceptual loss, over configs/places512.py.

Changes `loss.pcp_ratio` from 0.1 to 0: G is trained by the adversarial loss alone (on both D branches), and no
VGG19 weights are needed. The official recipe adds the pre-ReLU VGG19 conv4_4 / conv5_4 perceptual loss; this
variant isolates what it contributes to fidelity (PSNR / SSIM / L1) against realism (FID, P-IDS / U-IDS).
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.loss.pcp_ratio = 0.0  # adversarial loss only (loss.vgg_weights not needed)
    return config
