"""Which `MATConfig`s the PyTorch twin builds, and the constructor numbers it reads off one.

The twin implements the official architecture family: any resolution, widths (`channel_base`, `channel_max`,
`stage1_dim`, `w_dim`, `z_dim`), depths, windows, heads, token map, MLP ratio, mapping depth, masked encoder layers,
shifted windows on/off and style manipulation on/off. Switches it does not implement (other attention kinds, the
static mask, the pre-LN block, class conditioning) are refused by name at construction.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

# field -> the only value the twin implements (the official one)
OFFICIAL_ONLY = {"attention": "mca", "mask_update": "window_or", "block": "adjusted", "c_dim": 0}


@dataclasses.dataclass(frozen=True)
class Arch:
    nf: Callable[[int], int]  # channels at pixel resolution r
    stage1: dict  # FirstStage keyword arguments
    mapping: dict  # MappingNet keyword arguments
    style_manipulation: bool


def arch_of(cfg) -> Arch:
    """The twin's constructor numbers for `cfg`; ValueError naming every field it cannot build."""
    from mat_jax.models.config import nf

    bad = [f"{k}={getattr(cfg, k)!r} (the twin implements {v!r})" for k, v in OFFICIAL_ONLY.items()
           if getattr(cfg, k) != v]
    if bad:
        raise ValueError("mat_jax.torch_twin cannot build this configuration: " + ", ".join(bad))
    stage1 = dict(heads=cfg.stage1_heads, token_res=cfg.stage1_token_res, depths=tuple(cfg.stage1_depths),
                  windows=tuple(cfg.stage1_window_sizes), mlp_ratio=cfg.stage1_mlp_ratio,
                  masked_layers=cfg.stage1_masked_layers, shifted=cfg.shifted_windows,
                  style_manipulation=cfg.style_manipulation, dim=cfg.stage1_dim)
    mapping = dict(num_layers=cfg.mapping_layers, lr_multiplier=cfg.mapping_lr_multiplier,
                   w_avg_beta=cfg.w_avg_beta)
    return Arch(functools.partial(nf, cfg), stage1, mapping, cfg.style_manipulation)
