"""Official MAT at 256x256 (Places365 256 / CelebA-HQ-256): the places256 cfg of the official train.py.

Run: mat-jax train --config configs/places256.py --workdir runs/places256 --config.data.path=/data/places365/train
"""

from mat_jax.config import base_config


def get_config():
    config = base_config()
    config.model.resolution = 256  # Everything else is the official architecture.
    config.data.resolution = 256  # Crops match the model.
    return config
