"""The MAT generator: mapping network + two-stage synthesis (stage 1 alone with cfg.stages = 1), as one Flax module.

Variables: 'params' (trainable, raw equalized-LR values) and 'buffers' (w_avg, noise_const).
RNG streams: 'smm' (the two style-manipulation Bernoulli maps), 'noise' (decoder noise for
noise_mode='random'). Both maps can be supplied explicitly (`smm_maps`) to replay golden data, or
set to all ones (`smm_maps="ones"`) for deterministic inference.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mat_jax.models.config import MATConfig, nf
from mat_jax.models.mapping import MappingNet
from mat_jax.models.synthesis import SynthesisNet


def smm_shapes(cfg: MATConfig, batch: int, hw: tuple[int, int] | None = None):
    """Shapes of the two style-manipulation maps for images of size hw (default: the trained size):
    stage 1 [B, L_mid, dim] (L_mid = 256 tokens at the trained size), stage 2 [B, h16, w16, nf(16)]. The pair is
    the same for every config, so callers draw and pass maps alike; a single-stage model ignores the second."""
    h, w = hw or (cfg.resolution, cfg.resolution)
    f1 = 2**cfg.stage1_n_down * 4  # image pixels per bottleneck token
    f2 = cfg.resolution // 16  # image pixels per stage-2 bottleneck pixel
    return (batch, (h // f1) * (w // f1), cfg.stage1_dim), (batch, h // f2, w // f2, nf(cfg, 16))


def noise_shapes(cfg: MATConfig, batch: int) -> dict[str, tuple[int, ...]]:
    """{name: [B, r, r, 1]} of every stage-2 decoder layer that adds noise (the `noises` argument of synthesize at the
    trained size; stage 1 has no noise, so a single-stage model has none)."""
    if cfg.stages == 1:
        return {}
    out = {"Dec_16x16/conv1": (batch, 16, 16, 1)}
    for r in range(5, cfg.res_log2 + 1):
        for conv in ("conv0", "conv1"):
            out[f"Dec_{2**r}x{2**r}/{conv}"] = (batch, 2**r, 2**r, 1)
    return out


def ones_smm_maps(cfg: MATConfig, batch: int, hw: tuple[int, int] | None = None):
    """Maps of ones: keep every feature, mix in no noise (deterministic, non-pluralistic output)."""
    s1, s2 = smm_shapes(cfg, batch, hw)
    return jnp.ones(s1, jnp.float32), jnp.ones(s2, jnp.float32)


class Generator(nn.Module):
    cfg: MATConfig

    def setup(self):
        cfg = self.cfg
        self.mapping = MappingNet(
            cfg.z_dim, cfg.c_dim, cfg.w_dim, cfg.num_ws, cfg.mapping_layers, cfg.mapping_lr_multiplier, cfg.w_avg_beta
        )
        self.synthesis = SynthesisNet(cfg)

    def map(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        """z [B, z_dim] -> ws [B, num_ws, w_dim]."""
        return self.mapping(z, c, truncation_psi, truncation_cutoff, update_w_avg)

    def synthesize(self, images, masks, ws, noise_mode="random", smm_maps=None, noises=None):
        """images [B,R,R,3] in [-1,1], masks [B,R,R,1] (1 = known, 0 = hole), ws [B,num_ws,w_dim]
        -> (final [B,R,R,3], stage1 [B,R,R,3], aux dict of intermediates); final = stage1 when cfg.stages = 1."""
        if isinstance(smm_maps, str):
            if smm_maps != "ones":
                raise ValueError(f"smm_maps must be None, 'ones' or a pair of arrays, got {smm_maps!r}")
            smm_maps = ones_smm_maps(self.cfg, images.shape[0], images.shape[1:3])
        return self.synthesis(images, masks, ws, noise_mode, smm_maps, noises)

    def __call__(
        self,
        images,
        masks,
        z,
        c=None,
        truncation_psi=1.0,
        truncation_cutoff=None,
        noise_mode="random",
        smm_maps=None,
        noises=None,
        update_w_avg=False,
    ):
        """images [B, R, R, 3] in [-1, 1], masks [B, R, R, 1] (1 = known), z [B, z_dim], c [B, c_dim] or None
        -> (final [B, R, R, 3], stage1 [B, R, R, 3])."""
        ws = self.map(z, c, truncation_psi, truncation_cutoff, update_w_avg)
        final, out1, _ = self.synthesize(images, masks, ws, noise_mode, smm_maps, noises)
        return final, out1
