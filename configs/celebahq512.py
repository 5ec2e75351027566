"""Official MAT on CelebA-HQ at 512x512 (cfg celeba512 of the official train.py: 25000 kimg, else the README
recipe).

Run: mat-jax train --config configs/celebahq512.py --workdir runs/celebahq512 --config.data.path=/data/celeba-hq/train
"""

import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location("_places512", pathlib.Path(__file__).with_name("places512.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config():
    config = _base.get_config()
    config.train.total_kimg = 25000  # cfg celeba512: 25 M images (maintainer: ~8.5-9 days on 8 A100).
    config.data.crop = "official"  # CelebA-HQ images are already 1024/512 squares: a random crop of a square.
    return config
