"""The two-branch MAT discriminator (full branch on the output, half-width branch on stage 1; the second branch is
absent with cfg.d_stage1 = False)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mat_jax.models.config import MATConfig, nf
from mat_jax.models.layers import EqConv2d, EqDense
from mat_jax.models.mapping import MappingNet

SQRT_HALF = 0.5**0.5


def minibatch_std(x: jax.Array, group_size: int, num_channels: int = 1, num_shards: int = 1) -> jax.Array:
    """Append the minibatch stddev as the last channel(s): [N,H,W,C] -> [N,H,W,C+F].

    Groups are strided as in the official layer: sample i belongs to group i mod (N / G).
    With num_shards > 1 the batch is split into that many contiguous shards (one per data-parallel
    device) and the statistic is computed inside each, as the official per-GPU layer does.
    """
    if num_shards > 1:
        n = x.shape[0]
        if n % num_shards:
            raise ValueError(f"minibatch-std: batch {n} is not divisible into {num_shards} shards")
        xs = x.reshape(num_shards, n // num_shards, *x.shape[1:])
        ys = jax.vmap(lambda t: minibatch_std(t, group_size, num_channels))(xs)
        return ys.reshape(n, *ys.shape[2:])
    n, h, w, c = x.shape
    g = min(group_size, n) if group_size else n
    if n % g:
        raise ValueError(f"minibatch-std: batch {n} is not divisible by the group size {g}")
    f = num_channels
    y = x.astype(jnp.float32).reshape(g, n // g, h, w, f, c // f)
    y = y - jnp.mean(y, axis=0)
    y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)  # [n/g, H, W, F, C/F]
    y = jnp.mean(y, axis=(1, 2, 4))  # [n/g, F]
    y = jnp.tile(y, (g, 1))  # [N, F]: sample i -> group i mod (N/G)
    y = jnp.broadcast_to(y[:, None, None, :], (n, h, w, f)).astype(x.dtype)
    return jnp.concatenate([x, y], axis=-1)


class DisBlock(nn.Module):
    """skip = 1x1 down conv (no bias) * sqrt(.5); h = 3x3 conv, 3x3 down conv (gain sqrt(.5)); skip + h."""

    in_features: int
    out_features: int

    @nn.compact
    def __call__(self, x_BxHxWxC):  # -> [B, H/2, W/2, out_features]
        x = x_BxHxWxC
        skip = EqConv2d(self.out_features, 1, "linear", down=2, use_bias=False, name="skip")(x, gain=SQRT_HALF)
        x = EqConv2d(self.in_features, 3, "lrelu", name="conv0")(x)
        x = EqConv2d(self.out_features, 3, "lrelu", down=2, name="conv1")(x, gain=SQRT_HALF)
        return skip + x


class _FromRGB(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x_BxRxRxC):  # -> [B, R, R, features]
        return EqConv2d(self.features, 1, "lrelu", name="conv")(x_BxRxRxC)


def _branch(cfg: MATConfig, prefix: str, div: int, x: jax.Array, shards: int) -> jax.Array:
    """{prefix}_0 (FromRGB) .. {prefix}_{L-2} (blocks), mbstd (index L-1, no params), {prefix}_L conv.

    Must be called inside the Discriminator's compact scope: the layers are its direct children,
    named like the official Sequential entries (`Dis.3` <-> `Dis_3`). [B,R,R,4] -> [B,4,4,nf(4)/div].
    """
    x = _FromRGB(nf(cfg, cfg.resolution) // div, name=f"{prefix}_0")(x)
    i = 1
    for r in range(cfg.res_log2, 2, -1):
        x = DisBlock(nf(cfg, 2**r) // div, nf(cfg, 2 ** (r - 1)) // div, name=f"{prefix}_{i}")(x)
        i += 1
    if cfg.mbstd_num_channels > 0:
        x = minibatch_std(x, cfg.mbstd_group_size, cfg.mbstd_num_channels, shards)
    i += 1
    return EqConv2d(nf(cfg, 4) // div, 3, "lrelu", name=f"{prefix}_{i}")(x)


class Discriminator(nn.Module):
    """(images, masks, images_stg1, c) -> (logit [B,1], logit_stg1 [B,1] or None without the stage-1 branch).
    masks: 1 = known, 0 = hole."""

    cfg: MATConfig

    def _head(self, feat, fc0, fc1):
        flat = jnp.transpose(feat, (0, 3, 1, 2)).reshape(feat.shape[0], -1)  # NCHW flatten (official)
        return fc1(fc0(flat))

    @nn.compact
    def __call__(self, images, masks, images_stg1, c=None, return_features=False, mbstd_shards: int = 1):
        """images [B, R, R, 3] in [-1, 1], masks [B, R, R, 1] (1 = known), images_stg1 [B, R, R, 3], c [B, c_dim]
        -> (logits [B, 1], stage-1 logits [B, 1]) (and the features with return_features). With cfg.d_stage1 =
        False there is no stage-1 branch: images_stg1 is not read (None is fine) and the stage-1 logits are None.

        mbstd_shards: compute the minibatch-std statistic per contiguous batch shard (set it to the
        number of data-parallel devices to reproduce the official per-GPU statistic)."""
        cfg = self.cfg
        c4 = nf(cfg, 4)
        cmap_dim = c4 if cfg.c_dim > 0 else 0
        out_dim = 1 if cmap_dim == 0 else cmap_dim
        feat = _branch(cfg, "Dis", 1, jnp.concatenate([masks - 0.5, images], axis=-1), mbstd_shards)
        x = self._head(feat, EqDense(c4, act="lrelu", name="fc0"), EqDense(out_dim, name="fc1"))
        feat1 = x1 = None
        if cfg.d_stage1:
            feat1 = _branch(cfg, "Dis_stg1", 2, jnp.concatenate([masks - 0.5, images_stg1], axis=-1), mbstd_shards)
            x1 = self._head(feat1, EqDense(c4 // 2, act="lrelu", name="fc0_stg1"), EqDense(out_dim, name="fc1_stg1"))
        if cfg.c_dim > 0:
            if c is None:
                raise ValueError(f"this discriminator is conditional (c_dim={cfg.c_dim}); pass c")
            cmap = MappingNet(
                0, cfg.c_dim, cmap_dim, None, cfg.mapping_layers, cfg.mapping_lr_multiplier, None, name="mapping"
            )(None, c)

            def project(t):  # [B, cmap_dim] -> [B, 1]: the projection onto the label embedding
                return jnp.sum(t * cmap, axis=1, keepdims=True) * (1 / cmap_dim**0.5)

            x = project(x)
            x1 = None if x1 is None else project(x1)
        if return_features:
            feats = {"Dis_out": feat} if feat1 is None else {"Dis_out": feat, "Dis_stg1_out": feat1}
            return x, x1, feats
        return x, x1
