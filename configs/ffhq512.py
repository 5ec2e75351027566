"""MAT on FFHQ at 512x512: the CelebA-HQ recipe (the official repo releases an FFHQ-512 model trained with the
face settings; it has no separate FFHQ cfg entry, so celeba512's 25000 kimg is used).

Run: mat-jax train --config configs/ffhq512.py --workdir runs/ffhq512 --config.data.path=/data/ffhq/images512
"""

from mat_jax.config import base_config


def get_config():
    config = base_config()
    config.train.total_kimg = 25000  # As celebahq512.py (cfg celeba512).
    config.data.crop = "resize"  # FFHQ ships 1024x1024 faces: resize the whole face to 512 (identity on 512 files).
    return config
