"""MAT on FFHQ at 512x512: the CelebA-HQ recipe (the official repo releases an FFHQ-512 model trained with the
face settings; it has no separate FFHQ cfg entry, so celeba512's 25000 kimg is used).

Run: mat-jax train --config configs/ffhq512.py --workdir runs/ffhq512 --config.data.path=/data/ffhq/images512
"""

import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location("_celebahq512", pathlib.Path(__file__).with_name("celebahq512.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config():
    config = _base.get_config()
    config.data.crop = "resize"  # FFHQ ships 1024x1024 faces: resize the whole face to 512 (identity on 512 files).
    return config
