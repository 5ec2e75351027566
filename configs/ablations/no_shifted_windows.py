"""Ablation: shifted windows off, over configs/places512.py.

Changes `model.shifted_windows` from True to False: odd blocks no longer shift their windows by half a window, so
tokens only mix across window borders through the layers' down/up-sampling and partial convolutions. MAT inherits
the shift from Swin; this variant measures how much cross-window mixing inside a layer matters for filling holes.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.shifted_windows = False  # every block uses the unshifted window grid
    return config
