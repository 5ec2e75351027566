"""Mapping network z -> w with the tracked w average (buffer) and truncation."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mat_jax.models.layers import EqDense


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


class MappingNet(nn.Module):
    """MappingNet: 8 lrelu FCs (lr multiplier 0.01) and `w_avg` in the 'buffers' collection.

    Returns ws [B, num_ws, w_dim] (or [B, w_dim] when num_ws is None). With update_w_avg=True
    (training; needs mutable=['buffers']) w_avg <- lerp(mean_batch(w), w_avg, beta) on the
    un-truncated w. Truncation: w_avg + psi * (w - w_avg) on the first `truncation_cutoff` ws (all
    if None).
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int | None
    num_layers: int = 8
    lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995

    @nn.compact
    def __call__(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.astype(jnp.float32))  # [B, z_dim]
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this mapping network is conditional (c_dim={self.c_dim}); pass c")
            y = normalize_2nd_moment(EqDense(self.w_dim, name="embed")(c.astype(jnp.float32)))
            x = y if x is None else jnp.concatenate([x, y], axis=-1)
        for i in range(self.num_layers):
            x = EqDense(self.w_dim, act="lrelu", lr_multiplier=self.lr_multiplier, name=f"fc{i}")(x)

        track = self.num_ws is not None and self.w_avg_beta is not None
        if track:
            w_avg = self.variable("buffers", "w_avg", lambda: jnp.zeros((self.w_dim,), jnp.float32))
            if update_w_avg and not self.is_initializing():
                batch_mean = jnp.mean(jax.lax.stop_gradient(x), axis=0)
                w_avg.value = batch_mean + self.w_avg_beta * (w_avg.value - batch_mean)
        if self.num_ws is not None:
            x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
        if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1):
            if not track:
                raise ValueError("truncation needs a tracked w_avg")
            avg = w_avg.value
            trunc = avg + truncation_psi * (x - avg)
            if truncation_cutoff is None:
                x = trunc
            else:
                idx = jnp.arange(self.num_ws)[None, :, None]
                x = jnp.where(idx < truncation_cutoff, trunc, x)
        return x
