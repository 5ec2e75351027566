"""Official MAT at 256x256 (Places365 256 / CelebA-HQ-256): the places256 cfg of the official train.py.

Run: mat-jax train --config configs/places256.py --workdir runs/places256 --config.data.path=/data/places365/train
"""

import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location("_places512", pathlib.Path(__file__).with_name("places512.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config():
    config = _base.get_config()
    config.model.resolution = 256  # Everything else is the official architecture.
    config.data.resolution = 256  # Crops match the model.
    return config
