"""Ablation: a single-stage MAT (no stage-2 refinement, no stage-1 D branch), over configs/places512.py.

Changes `model.stages` from 2 to 1 and `model.d_stage1` from True to False: the generator's output is the transformer
stage's coarse image (composited with the known pixels); the StyleGAN2-like stage-2 network is not built, and D keeps
its main branch only (a stage-1 branch would judge the same image twice, so `stages=1` requires `d_stage1=False`).
The paper's ablation asks what the coarse-to-fine design buys over the transformer alone. Weights export under their
official-style names (the stage-2 and Dis_stg1 entries absent); the PyTorch twin does not build this variant.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.stages = 1  # output = stage 1's composite; no synthesis enc / dec / to_style params
    config.model.d_stage1 = False  # no Dis_stg1 / fc*_stg1, no stage-1 adversarial loss or R1 term
    return config
