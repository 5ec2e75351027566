"""Ablation: no stage-1 discriminator branch, over configs/places512.py.

Changes `model.d_stage1` from True to False: both stages are kept, but D has its main branch only (no Dis_stg1 /
fc0_stg1 / fc1_stg1), so stage 1's coarse image gets no adversarial loss or R1 term of its own and learns only
through stage 2's output. It separates the value of supervising the coarse result (the official two-branch D) from
the value of the second stage itself (configs/ablations/single_stage.py). The PyTorch twin does not build this D.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.d_stage1 = False  # D on the final image only
    return config
