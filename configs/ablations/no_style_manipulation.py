"""Ablation: style manipulation module off, over configs/places512.py.

Changes `model.style_manipulation` from True to False: the two Bernoulli(0.5) maps that mix noise-derived features
into stage 1's bottleneck and stage 2's 16x16 features are gone, so the output depends on z only through the
modulation. The paper introduces the module for pluralistic (diverse) completions; the maintainer also suggests
removing it to debug divergent training (official issue #20).
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.style_manipulation = False  # no SMM maps (and no to_square / stage-2 mixing weights)
    return config
