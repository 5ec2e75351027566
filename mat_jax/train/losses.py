"""The MAT loss terms (losses/loss.py `TwoStageLoss`, losses/pcp.py), as pure functions of logits and images.

Every term is a per-sample quantity averaged over the global batch: with equal per-device batches that equals the
official per-GPU mean averaged by DDP.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mat_jax.train.vgg import VGG19Features, widths_from_params

PCP_LAYER_WEIGHTS = {"conv4_4": 0.25, "conv5_4": 0.5}  # official PerceptualLoss(layer_weights=...)


def g_adversarial(logit_B1: jax.Array, logit_stg1_B1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Non-saturating G loss on both D branches: mean softplus(-l), mean softplus(-l1)."""
    return jnp.mean(jax.nn.softplus(-logit_B1)), jnp.mean(jax.nn.softplus(-logit_stg1_B1))


def d_adversarial(fake_B1, fake_stg1_B1, real_B1, real_stg1_B1) -> tuple[jax.Array, jax.Array]:
    """D loss per branch: mean softplus(l_fake) + mean softplus(-l_real), for the main and the stage-1 branch."""
    main = jnp.mean(jax.nn.softplus(fake_B1)) + jnp.mean(jax.nn.softplus(-real_B1))
    stg1 = jnp.mean(jax.nn.softplus(fake_stg1_B1)) + jnp.mean(jax.nn.softplus(-real_stg1_B1))
    return main, stg1


def r1_penalties(d_logits_fn, real_BxHxWx3: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-sample R1 penalties [B] of both branches.

    `d_logits_fn(images, images_stg1) -> (logit [B,1], logit_stg1 [B,1])` (mask and params closed over). The real
    image feeds both branches as two separate inputs; each penalty is the squared gradient of that branch's summed
    logits w.r.t. its own image input (the mask channel is not penalised). The branches share no computation, so
    one backward pass of sum(l) + sum(l1) yields both gradients.
    """

    def summed(x, x1):
        logit, logit1 = d_logits_fn(x, x1)
        return jnp.sum(logit) + jnp.sum(logit1)

    g, g1 = jax.grad(summed, argnums=(0, 1))(real_BxHxWx3, real_BxHxWx3)
    return jnp.sum(jnp.square(g), axis=(1, 2, 3)), jnp.sum(jnp.square(g1), axis=(1, 2, 3))


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
