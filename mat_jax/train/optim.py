"""Adam with the StyleGAN2 lazy-regularisation scaling used by the official MAT trainer.

A network regularised every I iterations gets one extra optimiser step per I main steps; the official code
compensates by scaling the learning rate and both Adam betas with c = I / (I + 1):
lr <- lr * c, beta <- beta ** c. MAT applies it to G with I = 4 although its G regulariser (path length) is
disabled, and to D with I = 16 (lazy R1). README command (lr 0.001): G lr 8e-4, beta2 0.991992;
D lr 9.4118e-4, beta2 0.990585.

The official `--lrt` option gives G's transformer parameters (official names containing 'tran' or 'Tran') their
own learning rate, scaled by the same c: `AdamSettings.lr_transformer`, labelled through the weight-layout table.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax.traverse_util import flatten_dict, unflatten_dict

from mat_jax.weights.layout import official_name

TRANSFORMER_NAME_PARTS = ("tran", "Tran")  # the official trainer's filter for its --lrt parameter group


def transformer_labels(params) -> dict:
    """'transformer' for every leaf whose official name contains 'tran'/'Tran', else 'base' (same tree)."""
    flat = flatten_dict(params)
    return unflatten_dict({path: "transformer" if any(t in official_name(path) for t in TRANSFORMER_NAME_PARTS)
                           else "base" for path in flat})


@dataclasses.dataclass(frozen=True)
class AdamSettings:
    """Effective Adam hyper-parameters after the lazy-regularisation scaling."""

    lr: float
    b1: float
    b2: float
    eps: float
    reg_interval: int | None
    lr_transformer: float | None = None  # the transformer group's learning rate (official --lrt), scaled

    def make(self) -> optax.GradientTransformation:
        # optax.adam == torch.optim.Adam (bias correction included, eps outside the sqrt).
        adam = optax.adam(self.lr, b1=self.b1, b2=self.b2, eps=self.eps)
        if self.lr_transformer is None:
            return adam
        tran = optax.adam(self.lr_transformer, b1=self.b1, b2=self.b2, eps=self.eps)
        return optax.multi_transform({"base": adam, "transformer": tran}, transformer_labels)


def lazy_reg_adam(lr: float, betas: tuple[float, float], eps: float, reg_interval: int | None,
                  lr_transformer: float | None = None) -> AdamSettings:
    """Adam settings for a network regularised every `reg_interval` iterations (None = no lazy scaling)."""
    lrt = None if lr_transformer is None else float(lr_transformer)
    if reg_interval is None or reg_interval <= 0:
        return AdamSettings(float(lr), float(betas[0]), float(betas[1]), float(eps), None, lrt)
    c = reg_interval / (reg_interval + 1)
    return AdamSettings(float(lr) * c, float(betas[0]) ** c, float(betas[1]) ** c, float(eps), int(reg_interval),
                        None if lrt is None else lrt * c)


def sanitize_grads(grads):
    """NaN -> 0, +inf -> 1e5, -inf -> -1e5 on every gradient, as the official trainer does before each step."""
    return jax.tree.map(lambda g: jnp.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5), grads)


def optimizers_from_config(opt_cfg) -> tuple[AdamSettings, AdamSettings]:
    """(G settings, D settings) from the config's `optimizer` section."""
    betas = tuple(opt_cfg.betas)
    if len(betas) != 2:
        raise ValueError(f"optimizer.betas must have two values, got {betas}")
    g = lazy_reg_adam(opt_cfg.g_lr, betas, opt_cfg.eps, opt_cfg.g_reg_interval, opt_cfg.get("g_lr_transformer"))
    d = lazy_reg_adam(opt_cfg.d_lr, betas, opt_cfg.eps, opt_cfg.d_reg_interval)
    return g, d
