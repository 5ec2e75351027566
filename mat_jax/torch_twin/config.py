"""Which `MATConfig`s the PyTorch twin builds, and the constructor numbers it reads off one.

The twin implements the official architecture family: any resolution the JAX model accepts, widths
(`channel_base`, `channel_max`, `stage1_dim`, `w_dim`, `z_dim`), class conditioning (`c_dim`), mapping depth,
learning-rate multiplier and w_avg decay, depths, windows, heads, token map, MLP ratio, masked encoder layers,
shifted windows on/off, style manipulation on/off, minibatch-std group / channels, and the cheap ablations
`attention` ('mca' | 'window' | 'full') and `mask_update` ('window_or' | 'none'). The switches it does not
implement are refused by name at construction (`SUPPORTED`): `block='prenorm_residual'` and
`stage1_embed='linear_patch'` (modules named after Flax, no official counterpart), `stages=1` and `d_stage1=False`
(networks without official modules: the official code cannot load such weights).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

# field -> the values the twin implements (the official one first)
SUPPORTED = {
    "attention": ("mca", "window", "full"),
    "mask_update": ("window_or", "none"),
    "block": ("adjusted",),
    "stage1_embed": ("conv",),
    "stages": (2,),
    "d_stage1": (True,),
}


@dataclasses.dataclass(frozen=True)
class Arch:
    nf: Callable[[int], int]  # channels at pixel resolution r
    stage1: dict  # FirstStage keyword arguments
    mapping: dict  # MappingNet keyword arguments (G's z mapping and D's label mapping)
    style_manipulation: bool


def check_supported(cfg) -> None:
    """ValueError naming every field of `cfg` the twin cannot build (e.g. "block='prenorm_residual'")."""
    bad = [
        f"{k}={getattr(cfg, k)!r} (the twin implements {', '.join(map(repr, v))})"
        for k, v in SUPPORTED.items()
        if getattr(cfg, k) not in v
    ]
    if bad:
        raise ValueError("mat_jax.torch_twin cannot build this configuration: " + ", ".join(bad))


def arch_of(cfg) -> Arch:
    """The twin's constructor numbers for `cfg` (a `mat_jax.models.MATConfig`); see `check_supported`."""
    from mat_jax.models.config import nf

    check_supported(cfg)
    stage1 = dict(
        heads=cfg.stage1_heads,
        token_res=cfg.stage1_token_res,
        depths=tuple(cfg.stage1_depths),
        windows=tuple(cfg.stage1_window_sizes),
        mlp_ratio=cfg.stage1_mlp_ratio,
        masked_layers=cfg.stage1_masked_layers,
        shifted=cfg.shifted_windows,
        style_manipulation=cfg.style_manipulation,
        dim=cfg.stage1_dim,
        attention=cfg.attention,
        mask_update=cfg.mask_update,
    )
    mapping = dict(num_layers=cfg.mapping_layers, lr_multiplier=cfg.mapping_lr_multiplier, w_avg_beta=cfg.w_avg_beta)
    return Arch(functools.partial(nf, cfg), stage1, mapping, cfg.style_manipulation)
