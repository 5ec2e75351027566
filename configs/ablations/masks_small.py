"""Ablation: train on the official *small* free-form mask generator instead of the large one.

Changes `data.mask_kind` from "mat_large" to "mat_small" over configs/places512.py. The paper trains on large masks
and reports large- and small-mask results separately; this variant asks whether the large-mask training distribution
is what buys the large-hole numbers. For comparable evaluation across variants pin the evaluation masks: generated
ones stay `eval.masks=kind:mat_large:0` (the default) and a fixed folder (`mat-jax masks ... --out DIR`,
`--config.eval.masks=DIR`) is safest; `mat-jax compare` refuses runs evaluated on different masks.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.data.mask_kind = "mat_small"  # official small-mask generator (see mat_jax/data/masks_extra.py)
    return config
