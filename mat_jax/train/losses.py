"""The MAT loss terms (losses/loss.py `TwoStageLoss`, losses/pcp.py), as pure functions of logits and images.

Every term is a per-sample quantity averaged over the global batch: with equal per-device batches that equals the
official per-GPU mean averaged by DDP. The adversarial terms are per D branch; steps.py sums them over the branches
the discriminator has (the stage-1 branch only with model.d_stage1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mat_jax.train.vgg import VGG19Features, widths_from_params

PCP_LAYER_WEIGHTS = {"conv4_4": 0.25, "conv5_4": 0.5}  # official PerceptualLoss(layer_weights=...)


def g_adversarial(logit_B1: jax.Array) -> jax.Array:
    """Non-saturating G loss on one D branch: mean softplus(-l)."""
    return jnp.mean(jax.nn.softplus(-logit_B1))


def d_adversarial(fake_B1: jax.Array, real_B1: jax.Array) -> jax.Array:
    """D loss on one branch: mean softplus(l_fake) + mean softplus(-l_real)."""
    return jnp.mean(jax.nn.softplus(fake_B1)) + jnp.mean(jax.nn.softplus(-real_B1))


def r1_penalties(d_logits_fn, reals: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-sample R1 penalties [B] of every D branch.

    `reals`: {branch: the real images [B,H,W,3]}, one separate input per branch (the same image for each);
    `d_logits_fn(reals) -> {branch: logit [B,1]}` with the same branches (mask and params closed over). Each penalty
    is the squared gradient of that branch's summed logits w.r.t. its own image input (the mask channel is not
    penalised). The branches share no computation, so one backward pass of the summed logits yields every gradient.
    """

    def summed(xs):
        logits = d_logits_fn(xs)
        if set(logits) != set(xs):
            raise ValueError(f"R1: the discriminator returned branches {sorted(logits)} for inputs {sorted(xs)}")
        return sum(jnp.sum(logit) for logit in logits.values())

    grads = jax.grad(summed)(reals)
    return {k: jnp.sum(jnp.square(g), axis=(1, 2, 3)) for k, g in grads.items()}


def perceptual(vgg_params, x_BxHxWx3: jax.Array, target_BxHxWx3: jax.Array) -> jax.Array:
    """Official PCP: VGG19 pre-ReLU conv4_4 x 1/4 + conv5_4 x 1/2, L1 (mean abs) per layer; images in [-1, 1].

    The target's features carry no gradient; the VGG parameters are frozen (not differentiated by the callers).
    """
    net = VGG19Features(widths_from_params(vgg_params))
    fx = net.apply({"params": vgg_params}, (x_BxHxWx3 + 1.0) * 0.5)
    ft = net.apply({"params": vgg_params}, jax.lax.stop_gradient((target_BxHxWx3 + 1.0) * 0.5))
    total = jnp.zeros((), jnp.float32)
    for name, weight in PCP_LAYER_WEIGHTS.items():
        total = total + weight * jnp.mean(jnp.abs(fx[name].astype(jnp.float32) - jax.lax.stop_gradient(ft[name])))
    return total
