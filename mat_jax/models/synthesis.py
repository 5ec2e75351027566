"""Stage 2 (StyleGAN2-like encoder/decoder with style codes) and the full synthesis network."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mat_jax.models import ops, remat
from mat_jax.models.config import MATConfig, nf
from mat_jax.models.first_stage import FirstStage, bernoulli_map
from mat_jax.models.layers import EqConv2d, EqDense, StyleConv, ToRGB


class Encoder(nn.Module):
    """EncConv_Block_{R}x{R} for R = resolution .. 16; returns {log2 R: feature [B,R,R,nf(R)]}."""

    cfg: MATConfig

    @nn.compact
    def __call__(self, x_BxRxRx7):  # [mask - 0.5, composite, masked image] -> {log2 r: [B, r, r, nf(r)]}
        x, cfg, out = x_BxRxRx7, self.cfg, {}
        res = cfg.resolution
        while res >= 16:
            c = nf(cfg, res)
            name = f"EncConv_Block_{res}x{res}"
            if res == cfg.resolution:  # EncFromRGB: 1x1 then 3x3
                x = remat.block(_EncFromRGB, cfg.remat, "all")(c, name=name)(x)
            else:  # ConvBlockDown: 3x3 down=2 then 3x3
                x = remat.block(_ConvBlockDown, cfg.remat, "all")(c, name=name)(x)
            out[res.bit_length() - 1] = x
            res //= 2
        return out


class _EncFromRGB(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x_BxRxRx7):  # -> [B, R, R, features]
        x = EqConv2d(self.features, 1, "lrelu", name="conv0")(x_BxRxRx7)
        return EqConv2d(self.features, 3, "lrelu", name="conv1")(x)


class _ConvBlockDown(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x_BxHxWxC):  # -> [B, H/2, W/2, features]
        x = EqConv2d(self.features, 3, "lrelu", down=2, name="conv0")(x_BxHxWxC)
        return EqConv2d(self.features, 3, "lrelu", name="conv1")(x)


class ToStyle(nn.Module):
    """Three 3x3 down=2 convs (16 -> 2), global average pool, lrelu FC -> gs [B, out]."""

    features: int

    @nn.compact
    def __call__(self, x_Bx16x16xC):  # -> gs [B, features]
        x = x_Bx16x16xC
        c = x.shape[-1]
        for i in range(3):
            x = EqConv2d(c, 3, "lrelu", down=2, name=f"conv_{i}")(x)
        return EqDense(self.features, act="lrelu", name="fc")(jnp.mean(x, axis=(1, 2)))


class DecBlock(nn.Module):
    """Dec_{R}x{R}: StyleConv up=2 [w_{2r-9}, gs] + E[r], StyleConv [w_{2r-8}, gs], ToRGB [w_{2r-7}, gs]."""

    res: int
    features: int
    img_channels: int

    @nn.compact
    def __call__(self, x_BxhxwxC, img_Bxhxwx3, ws_BxNxW, gs_BxG, skip_BxRxRxF, noise_mode, noises):
        """h = w = R/2 -> (x [B, R, R, features], img [B, R, R, 3])."""
        r = self.res.bit_length() - 1

        def style(i):  # [B, W + G]
            return jnp.concatenate([ws_BxNxW[:, i], gs_BxG], axis=-1)

        x = StyleConv(self.features, 3, up=2, resolution=self.res, name="conv0")(
            x_BxhxwxC, style(2 * r - 9), noise_mode, noises.get(f"Dec_{self.res}x{self.res}/conv0")
        )
        x = x + skip_BxRxRxF
        x = StyleConv(self.features, 3, resolution=self.res, name="conv1")(
            x, style(2 * r - 8), noise_mode, noises.get(f"Dec_{self.res}x{self.res}/conv1")
        )
        img = ToRGB(self.img_channels, name="toRGB")(x, style(2 * r - 7), img_Bxhxwx3)
        return x, img


class _DecBlockFirst(nn.Module):
    """Dec_16x16: plain 3x3 conv + E[4], StyleConv [w_0, gs], ToRGB [w_1, gs]."""

    features: int
    img_channels: int

    @nn.compact
    def __call__(self, x_Bx16x16xC, ws_BxNxW, gs_BxG, skip_Bx16x16xC, noise_mode, noises):
        """-> (x [B, 16, 16, features], img [B, 16, 16, 3])."""
        x = EqConv2d(x_Bx16x16xC.shape[-1], 3, "lrelu", name="conv0")(x_Bx16x16xC)
        x = x + skip_Bx16x16xC
        x = StyleConv(self.features, 3, resolution=16, name="conv1")(
            x, jnp.concatenate([ws_BxNxW[:, 0], gs_BxG], -1), noise_mode, noises.get("Dec_16x16/conv1")
        )
        img = ToRGB(self.img_channels, name="toRGB")(x, jnp.concatenate([ws_BxNxW[:, 1], gs_BxG], -1))
        return x, img


class Decoder(nn.Module):
    cfg: MATConfig

    @nn.compact
    def __call__(self, x_Bx16x16xC, ws_BxNxW, gs_BxG, feats, noise_mode, noises):
        """feats: {log2 r: [B, r, r, nf(r)]} of the encoder -> (img [B, R, R, 3], aux)."""
        cfg, aux, ws = self.cfg, {}, ws_BxNxW
        First = remat.block(_DecBlockFirst, cfg.remat, "all", static_argnums=(5,))  # noise_mode: static
        Block = remat.block(DecBlock, cfg.remat, "all", static_argnums=(6,))
        x, img = First(nf(cfg, 16), cfg.img_channels, name="Dec_16x16")(
            x_Bx16x16xC, ws, gs_BxG, feats[4], noise_mode, noises
        )
        aux["dec_16x16_x"], aux["dec_16x16_img"] = x, img
        for r in range(5, cfg.res_log2 + 1):
            res = 2**r
            x, img = Block(res, nf(cfg, res), cfg.img_channels, name=f"Dec_{res}x{res}")(
                x, img, ws, gs_BxG, feats[r], noise_mode, noises
            )
            aux[f"dec_{res}x{res}_x"], aux[f"dec_{res}x{res}_img"] = x, img
        return img, aux


class SynthesisNet(nn.Module):
    """(images, masks, ws) -> final image (and stage 1); masks: 1 = known, 0 = hole.

    smm_maps: (stage-1 map [B, L_mid, dim], stage-2 map [B,16,16,nf(16)]) of {0,1} values, or None
    to draw both from the 'smm' RNG stream. noises: optional {"Dec_RxR/convK": [B,R,R,1]} for
    noise_mode='random' (otherwise drawn from the 'noise' stream). With cfg.stages = 1 only `first_stage` is built:
    final = stage 1's composite, the stage-2 map and the noises are not used.
    """

    cfg: MATConfig

    @nn.compact
    def __call__(self, images, masks, ws, noise_mode="random", smm_maps=None, noises=None):
        # images [B, R, R, 3] in [-1, 1], masks [B, R, R, 1] (1 = known), ws [B, num_ws, w_dim]
        # -> (final [B, R, R, 3], stage-1 output [B, R, R, 3], aux {name: intermediate})
        cfg = self.cfg
        noises = noises or {}
        map1, map2 = (None, None) if smm_maps is None else smm_maps
        out1, aux1 = FirstStage(cfg, name="first_stage")(images, masks, ws, map1)
        aux = {f"stg1_{k}": v for k, v in aux1.items()}
        if cfg.stages == 1:  # single stage: stage 1's composite is the output
            return out1, out1, aux
        x = jnp.concatenate([masks - 0.5, images * masks + out1 * (1 - masks), images * masks], axis=-1)
        feats = Encoder(cfg, name="enc")(x)
        for r, f in feats.items():
            aux[f"enc_f{2**r}"] = f
        f16 = feats[4]
        if cfg.style_manipulation:
            add_n = EqDense(256, act="lrelu", name="to_square")(ws[:, 0])  # [B, 256]
            aux["syn_to_square"] = add_n
            add_n = add_n.reshape(-1, 16, 16, 1)
            add_n = ops.resize_linear_1d(ops.resize_linear_1d(add_n, f16.shape[1], 1), f16.shape[2], 2)
            if map2 is None:
                map2 = bernoulli_map(self.make_rng("smm"), f16.shape)
            f16 = f16 * map2 + add_n * (1 - map2)
        feats = dict(feats)
        feats[4] = f16
        aux["enc_f16_mixed"] = f16
        gs = ToStyle(2 * nf(cfg, 4), name="to_style")(f16)
        aux["syn_to_style"] = gs
        img, aux_dec = Decoder(cfg, name="dec")(f16, ws, gs, feats, noise_mode, noises)
        aux.update(aux_dec)
        aux["dec_img_raw"] = img
        final = img * (1 - masks) + images * masks
        return final, out1, aux
