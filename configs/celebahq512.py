"""Official MAT on CelebA-HQ at 512x512 (cfg celeba512 of the official train.py: 25000 kimg, else the README
recipe).

Run: mat-jax train --config configs/celebahq512.py --workdir runs/celebahq512 --config.data.path=/data/celeba-hq/train
"""

from mat_jax.config import base_config


def get_config():
    config = base_config()
    config.train.total_kimg = 25000  # cfg celeba512: 25 M images (maintainer: ~8.5-9 days on 8 A100).
    # data.crop stays "official": CelebA-HQ images are already 1024/512 squares, so a random crop of a square.
    return config
