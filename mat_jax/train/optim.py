"""Adam with the StyleGAN2 lazy-regularisation scaling used by the official MAT trainer.

A network regularised every I iterations gets one extra optimiser step per I main steps; the official code
compensates by scaling the learning rate and both Adam betas with c = I / (I + 1):
lr <- lr * c, beta <- beta ** c. MAT applies it to G with I = 4 although its G regulariser (path length) is
disabled, and to D with I = 16 (lazy R1). README command (lr 0.001): G lr 8e-4, beta2 0.991992;
D lr 9.4118e-4, beta2 0.990585.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class AdamSettings:
    """Effective Adam hyper-parameters after the lazy-regularisation scaling."""

    lr: float
    b1: float
    b2: float
    eps: float
    reg_interval: int | None

    def make(self) -> optax.GradientTransformation:
        # optax.adam == torch.optim.Adam (bias correction included, eps outside the sqrt).
        return optax.adam(self.lr, b1=self.b1, b2=self.b2, eps=self.eps)


def lazy_reg_adam(lr: float, betas: tuple[float, float], eps: float, reg_interval: int | None) -> AdamSettings:
    """Adam settings for a network regularised every `reg_interval` iterations (None = no lazy scaling)."""
    if reg_interval is None or reg_interval <= 0:
        return AdamSettings(float(lr), float(betas[0]), float(betas[1]), float(eps), None)
    c = reg_interval / (reg_interval + 1)
    return AdamSettings(float(lr) * c, float(betas[0]) ** c, float(betas[1]) ** c, float(eps), int(reg_interval))


def sanitize_grads(grads):
    """NaN -> 0, +inf -> 1e5, -inf -> -1e5 on every gradient, as the official trainer does before each step."""
    return jax.tree.map(lambda g: jnp.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5), grads)


def optimizers_from_config(opt_cfg) -> tuple[AdamSettings, AdamSettings]:
    """(G settings, D settings) from the config's `optimizer` section."""
    betas = tuple(opt_cfg.betas)
    if len(betas) != 2:
        raise ValueError(f"optimizer.betas must have two values, got {betas}")
    g = lazy_reg_adam(opt_cfg.g_lr, betas, opt_cfg.eps, opt_cfg.g_reg_interval)
    d = lazy_reg_adam(opt_cfg.d_lr, betas, opt_cfg.eps, opt_cfg.d_reg_interval)
    return g, d
