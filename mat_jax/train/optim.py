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
    return unflatten_dict(
        {
            path: "transformer" if any(t in official_name(path) for t in TRANSFORMER_NAME_PARTS) else "base"
            for path in flat
        }
    )


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


def lazy_reg_adam(
    lr: float, betas: tuple[float, float], eps: float, reg_interval: int | None, lr_transformer: float | None = None
) -> AdamSettings:
    """Adam settings for a network regularised every `reg_interval` iterations (None = no lazy scaling)."""
    lrt = None if lr_transformer is None else float(lr_transformer)
    if reg_interval is None or reg_interval <= 0:
        return AdamSettings(float(lr), float(betas[0]), float(betas[1]), float(eps), None, lrt)
    c = reg_interval / (reg_interval + 1)
    return AdamSettings(
        float(lr) * c,
        float(betas[0]) ** c,
        float(betas[1]) ** c,
        float(eps),
        int(reg_interval),
        None if lrt is None else lrt * c,
    )


def sanitize_grads(grads):
    """NaN -> 0, +inf -> 1e5, -inf -> -1e5 on every gradient, as the official trainer does before each step."""
    return jax.tree.map(lambda g: jnp.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5), grads)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The config's `optimizer` section, before the lazy-regularisation scaling (defaults: the official README
    command; the training config is built from these, so they are written only here)."""

    g_lr: float = 0.001  # G Adam learning rate (README --lr=0.001 -> 8e-4 after the scaling)
    d_lr: float = 0.001  # D Adam learning rate (-> 9.4118e-4)
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas (beta ** c, c = I / (I + 1))
    eps: float = 1e-8  # Adam epsilon
    g_reg_interval: int = 4  # G lazy-reg interval: only scales G's Adam (MAT's G regulariser is disabled)
    d_reg_interval: int = 16  # lazy R1 every this many iterations; scales D's Adam and the R1 gain
    g_lr_transformer: float | None = None  # official --lrt: G transformer parameters' own rate (None = g_lr)

    def settings(self) -> tuple[AdamSettings, AdamSettings]:
        """(G settings, D settings) after the lazy-regularisation scaling."""
        betas = tuple(self.betas)
        if len(betas) != 2:
            raise ValueError(f"optimizer.betas must have two values, got {betas}")
        g = lazy_reg_adam(self.g_lr, betas, self.eps, self.g_reg_interval, self.g_lr_transformer)
        d = lazy_reg_adam(self.d_lr, betas, self.eps, self.d_reg_interval)
        return g, d


def optimizers_from_config(opt_cfg) -> tuple[AdamSettings, AdamSettings]:
    """(G settings, D settings) from the config's `optimizer` section (unknown keys rejected, naming them)."""
    items = dict(opt_cfg.items()) if hasattr(opt_cfg, "items") else dict(opt_cfg)
    known = {f.name for f in dataclasses.fields(OptimizerConfig)}
    unknown = sorted(set(items) - known)
    if unknown:
        raise ValueError(f"unknown optimizer config keys {unknown}; known keys: {sorted(known)}")
    return OptimizerConfig(**items).settings()
