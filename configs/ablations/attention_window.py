"""Ablation: plain (unmasked) window attention instead of MCA, over the official recipe (configs/places512.py).

Changes `model.attention` from "mca" to "window": the transformer still runs shifted windows, but attention weights
ignore which tokens are valid. MAT's central claim is that mask-aware attention (aggregating only valid tokens, with
the dynamic mask update spreading validity) is what makes long-range context usable for large holes; this is the
variant that removes it. Same weights layout as the official network.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).parents[1] / "places512.py")
    config.model.attention = "window"  # no mask in the attention logits (the mask update has nothing to update)
    return config
