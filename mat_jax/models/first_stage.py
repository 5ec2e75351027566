"""Stage 1: the coarse network (partial-conv head, masked transformer body, SMM, style decoder)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mat_jax.models import ops, remat
from mat_jax.models.config import MATConfig
from mat_jax.models.layers import EqConv2d, EqDense, PartialConv2d, StyleConv, ToRGB
from mat_jax.models.transformer import BasicLayer


def bernoulli_map(rng: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """The SMM map: {0, 1} with probability 0.5 each (official: dropout(p=0.5) of a tensor of 0.5s)."""
    return jax.random.bernoulli(rng, 0.5, shape).astype(jnp.float32)


class DecStyleBlock(nn.Module):
    """conv0 (StyleConv up=2) -> + skip -> conv1 (StyleConv) -> toRGB(skip=img). No noise in stage 1."""

    dim: int
    img_channels: int

    @nn.compact
    def __call__(self, x_BxhxwxC, img_Bxhxwx3, style_BxS, skip_BxHxWxC):
        """H = 2h -> (x [B, H, W, dim], img [B, H, W, 3]); skip None: no encoder skip (linear patch embedding)."""
        x = StyleConv(self.dim, 3, up=2, use_noise=False, name="conv0")(x_BxhxwxC, style_BxS)
        if skip_BxHxWxC is not None:
            x = x + skip_BxHxWxC
        x = StyleConv(self.dim, 3, use_noise=False, name="conv1")(x, style_BxS)
        img = ToRGB(self.img_channels, name="toRGB")(x, style_BxS, img_Bxhxwx3)
        return x, img


class LinearPatchEmbed(nn.Module):
    """ViT-style head (the `stage1_embed='linear_patch'` ablation): non-overlapping patch x patch blocks of the input
    -> one linear map each. The token mask is 1 where any pixel of the patch is known (as a partial conv's)."""

    dim: int
    patch: int

    @nn.compact
    def __call__(self, x_BxRxRxC, masks_BxRxRx1):  # -> (tokens [B, T, T, dim], mask [B, T, T, 1]), T = R / patch
        b, r, _, c = x_BxRxRxC.shape
        p, t = self.patch, r // self.patch
        patches = x_BxRxRxC.reshape(b, t, p, t, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, t, t, p * p * c)
        mask = jnp.max(masks_BxRxRx1.reshape(b, t, p, t, p, 1), axis=(2, 4))
        return EqDense(self.dim, name="proj")(patches), mask


class FirstStage(nn.Module):
    """images [B,R,R,3] in [-1,1], masks [B,R,R,1] (1 = known, 0 = hole), ws [B,num_ws,w_dim].

    Returns (out1 [B,R,R,3] composited with the known pixels, aux dict of intermediates).
    smm_map: [B, L_mid, dim] {0,1} map or None (drawn from the 'smm' RNG stream).
    """

    cfg: MATConfig

    @nn.compact
    def __call__(self, images, masks, ws, smm_map=None):
        cfg = self.cfg
        dim = cfg.stage1_dim
        aux = {}
        x = jnp.concatenate([masks - 0.5, images * masks], axis=-1)  # [B,R,R,4], mask channel first
        n_down = cfg.stage1_n_down
        if cfg.stage1_embed == "linear_patch":
            x, m = LinearPatchEmbed(dim, 2**n_down, name="patch_embed")(x, masks)
            aux["patch_embed_x"], aux["patch_embed_mask"] = x, m
            skips = [None] * n_down  # no conv features at the image resolutions
        else:
            x, m = PartialConv2d(dim, 3, "lrelu", name="conv_first")(x, masks)
            aux["conv_first_x"], aux["conv_first_mask"] = x, m
            skips = [x]
            for i in range(n_down):
                x, m = PartialConv2d(dim, 3, "lrelu", down=2, name=f"enc_conv_{i}")(x, m)
                aux[f"enc_conv{i}_x"], aux[f"enc_conv{i}_mask"] = x, m
                if i != n_down - 1:
                    skips.append(x)
        b, th, tw = x.shape[0], x.shape[1], x.shape[2]  # token map (64x64 at the trained size)
        x = x.reshape(b, th * tw, dim)  # [B, L, C]
        m = m.reshape(b, th * tw, 1)
        hw = (th, tw)
        resample = (None, "down", "down", "up", "up")

        Layer = remat.block(BasicLayer, cfg.remat, "transformer", static_argnums=(2,))  # hw: static
        StyleBlock = remat.block(DecStyleBlock, cfg.remat, "all")

        def run_layer(i, x, hw, m):  # the map size follows statically (a rematerialised layer returns arrays only)
            x, _, m = layer(i)(x, hw, m)
            f = {"down": 0.5, "up": 2, None: 1}[resample[i]]
            return x, (int(hw[0] * f), int(hw[1] * f)), m

        def layer(i):
            return Layer(
                dim,
                cfg.stage1_depths[i],
                cfg.stage1_heads,
                cfg.stage1_window_sizes[i],
                cfg.stage1_token_sizes[i],
                resample[i],
                cfg.stage1_mlp_ratio,
                cfg.attention,
                cfg.mask_update,
                cfg.block,
                cfg.shifted_windows,
                name=f"tran_{i}",
            )

        for i in (0, 1):  # encoder layers; the official passes the mask to both (stage1_masked_layers=2)
            x, hw, m = run_layer(i, x, hw, m if i < cfg.stage1_masked_layers else None)
            aux[f"tran{i}_x"], aux[f"tran{i}_mask"] = x, m
            skips.append(x)
        x, hw, _ = run_layer(2, x, hw, None)  # bottleneck (the mask is dropped from here on)
        aux["tran2_x"] = x
        mid_hw = hw
        wv = EqDense(dim, act="lrelu", name="ws_style")(ws[:, -1])  # [B, dim] from the LAST w
        aux["ws_style"] = wv
        if cfg.style_manipulation:
            add_n = EqDense(256, act="lrelu", name="to_square")(wv)  # [B, 256]
            aux["to_square"] = add_n
            add_n = ops.resize_linear_1d(add_n, x.shape[1], axis=1)[:, :, None]  # [B, L, 1]
            if smm_map is None:
                smm_map = bernoulli_map(self.make_rng("smm"), x.shape)
            x = x * smm_map + add_n * (1 - smm_map)
        aux["mid_mixed_feat"] = x
        f = x.reshape(b, mid_hw[0], mid_hw[1], dim)
        for i in range(cfg.stage1_global_downs):  # 16 -> 1 officially (4 convs)
            f = EqConv2d(dim, 3, "lrelu", down=2, name=f"down_conv_{i}")(f)
        gs = EqDense(dim * 2, act="lrelu", name="to_style")(jnp.mean(f, axis=(1, 2)))  # [B, 2*dim]
        aux["to_style"] = gs
        style = jnp.concatenate([gs, wv], axis=-1)  # [B, 3*dim]: gs FIRST (opposite of stage 2)

        x, hw, _ = run_layer(3, x, hw, None)
        aux["tran3_x"] = x  # before the skip, as the golden hooks record it
        x = x + skips[-1]
        x, hw, _ = run_layer(4, x, hw, None)
        aux["tran4_x"] = x
        x = x + skips[-2]

        x = x.reshape(b, th, tw, dim)
        img = None
        for i in range(n_down):
            x, img = StyleBlock(dim, cfg.img_channels, name=f"dec_conv_{i}")(x, img, style, skips[n_down - 1 - i])
            aux[f"dec{i}_x"], aux[f"dec{i}_img"] = x, img
        out = img * (1 - masks) + images * masks
        return out, aux
