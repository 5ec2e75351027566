"""Official MAT on Places365 at 512x512 (README command of the official repo).

Run: mat-jax train --config configs/places512.py --workdir runs/places512 --config.data.path=/data/places/train

Every field and its default is documented where it lives (mat_jax/config.py says where): `MATConfig` for
`model.*` (every ablation switch), `DataConfig` for `data.*`, `steps.Recipe` / `optim.OptimizerConfig` for the
loss, EMA and optimizer values, `mat_jax.config.base_config` for the loop's own sections. `mat-jax info --config F`
and `<workdir>/config.json` show the resolved config.
"""

from mat_jax.config import base_config


def get_config():
    return base_config()  # The defaults are the official recipe.
