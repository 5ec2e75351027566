"""Ablation: train only on holes covering 10-50 % of the image (a hole-range restriction), over configs/places512.py.

Changes `data.hole_range` from (0, 1) to (0.1, 0.5): the large-mask generator's masks are rejected outside that
hole ratio. The official maintainer suggests lowering the hole ratio to stabilise training from scratch (issue #20);
the paper's point is performance on *large* holes, which this variant sees less of.

Evaluation: generated evaluation masks follow `data.hole_range`, so this variant's default eval set differs from the
baseline's and `mat-jax compare` refuses the pair; give both the same fixed mask folder (`--config.eval.masks=DIR`,
written by `mat-jax masks --kind mat_large --resolution 512 --count N --seed 0 --out DIR`).
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.data.hole_range = (0.1, 0.5)  # rejection interval of the hole ratio (training masks)
    return config
