"""MAT stage 2 (conv encoder, SMM at 16x16, global style, StyleGAN2-like decoder) and the Generator.

Reference §2.8–2.9. Module attribute names (`EncConv_Block_{R}x{R}`, `Dec_{R}x{R}`, `to_square`, ...) are
the official state_dict names. Mask convention: 1 = known pixel, 0 = hole.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mat_jax.models.constants import num_ws
from mat_jax.models.constants import official_nf as nf
from mat_jax.torch_twin.first_stage import FirstStage, smm_dropout_map
from mat_jax.torch_twin.layers import Conv2dLayer, FullyConnectedLayer, MappingNet, StyleConv, ToRGB

__all__ = ["SynthesisNet", "Generator"]


class EncFromRGB(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, out_channels, 1, activation="lrelu")
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation="lrelu")

    def forward(self, x):
        return self.conv1(self.conv0(x))


class ConvBlockDown(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation="lrelu")

    def forward(self, x):
        return self.conv1(self.conv0(x))


class Encoder(nn.Module):
    """[B, 7, R, R] -> {log2 r: feature [B, nf(r), r, r]} for r = R ... 16."""

    def __init__(self, res_log2, img_channels, nf=nf):
        super().__init__()
        self.resolutions = [2**i for i in range(res_log2, 3, -1)]
        for r in self.resolutions:
            block = EncFromRGB(img_channels * 2 + 1, nf(r)) if r == 2**res_log2 else ConvBlockDown(nf(2 * r), nf(r))
            setattr(self, f"EncConv_Block_{r}x{r}", block)

    def forward(self, x):
        out = {}
        for r in self.resolutions:
            x = getattr(self, f"EncConv_Block_{r}x{r}")(x)
            out[int(math.log2(r))] = x
        return out


class ToStyle(nn.Module):
    """[B, 512, 16, 16] -> three stride-2 convs -> global mean -> FC lrelu -> [B, 1024]."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Sequential(
            *[Conv2dLayer(in_channels, in_channels, 3, activation="lrelu", down=2) for _ in range(3)]
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = FullyConnectedLayer(in_channels, out_channels, activation="lrelu")

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(start_dim=1))


class DecBlockFirstV2(nn.Module):
    """16x16: conv, + E[16], StyleConv with [ws[:,0], gs], ToRGB with [ws[:,1], gs]."""

    def __init__(self, res, in_channels, out_channels, style_dim, use_noise, demodulate, img_channels):
        super().__init__()
        self.res = res
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = StyleConv(
            in_channels, out_channels, style_dim, 2**res, 3, use_noise=use_noise, demodulate=demodulate
        )
        self.toRGB = ToRGB(out_channels, img_channels, style_dim, kernel_size=1, demodulate=False)

    def forward(self, x, ws, gs, e_features, noise_mode="random"):
        x = self.conv0(x) + e_features[self.res]
        x = self.conv1(x, torch.cat([ws[:, 0], gs], dim=1), noise_mode=noise_mode)
        return x, self.toRGB(x, torch.cat([ws[:, 1], gs], dim=1), skip=None)


class DecBlock(nn.Module):
    """2^res: StyleConv up 2 with ws[2res-9], + E[res], StyleConv with ws[2res-8], ToRGB with ws[2res-7]."""

    def __init__(self, res, in_channels, out_channels, style_dim, use_noise, demodulate, img_channels):
        super().__init__()
        self.res = res
        r = 2**res
        self.conv0 = StyleConv(
            in_channels, out_channels, style_dim, r, 3, up=2, use_noise=use_noise, demodulate=demodulate
        )
        self.conv1 = StyleConv(out_channels, out_channels, style_dim, r, 3, use_noise=use_noise, demodulate=demodulate)
        self.toRGB = ToRGB(out_channels, img_channels, style_dim, kernel_size=1, demodulate=False)

    def forward(self, x, img, ws, gs, e_features, noise_mode="random"):
        x = self.conv0(x, torch.cat([ws[:, self.res * 2 - 9], gs], dim=1), noise_mode=noise_mode)
        x = x + e_features[self.res]
        x = self.conv1(x, torch.cat([ws[:, self.res * 2 - 8], gs], dim=1), noise_mode=noise_mode)
        return x, self.toRGB(x, torch.cat([ws[:, self.res * 2 - 7], gs], dim=1), skip=img)


class Decoder(nn.Module):
    def __init__(self, res_log2, style_dim, use_noise, demodulate, img_channels, nf=nf):
        super().__init__()
        self.Dec_16x16 = DecBlockFirstV2(4, nf(16), nf(16), style_dim, use_noise, demodulate, img_channels)
        for res in range(5, res_log2 + 1):
            block = DecBlock(res, nf(2 ** (res - 1)), nf(2**res), style_dim, use_noise, demodulate, img_channels)
            setattr(self, f"Dec_{2**res}x{2**res}", block)
        self.res_log2 = res_log2

    def forward(self, x, ws, gs, e_features, noise_mode="random"):
        x, img = self.Dec_16x16(x, ws, gs, e_features, noise_mode=noise_mode)
        for res in range(5, self.res_log2 + 1):
            x, img = getattr(self, f"Dec_{2**res}x{2**res}")(x, img, ws, gs, e_features, noise_mode=noise_mode)
        return img


class SynthesisNet(nn.Module):
    """The official synthesis network, or with `arch` (a `mat_jax.torch_twin.config.Arch`) any member of its
    family: other widths, depths, windows, token maps, resolutions (see `Generator.from_config`)."""

    def __init__(self, w_dim, img_resolution, img_channels=3, use_noise=True, demodulate=True, arch=None):
        super().__init__()
        res_log2 = int(math.log2(img_resolution))
        if arch is None:
            if img_resolution != 2**res_log2 or img_resolution not in (128, 256, 512):
                raise ValueError(
                    f"MAT is defined for resolutions 128, 256, 512; got {img_resolution} "
                    "(other architectures: Generator.from_config)"
                )
            nf_, stage1, self.style_manipulation = nf, {}, True
        else:
            nf_, stage1, self.style_manipulation = arch.nf, arch.stage1, arch.style_manipulation
        self.num_layers = num_ws(img_resolution)
        self.img_resolution = img_resolution
        self.first_stage = FirstStage(
            img_channels, img_resolution, w_dim=w_dim, use_noise=False, demodulate=demodulate, **stage1
        )
        self.enc = Encoder(res_log2, img_channels, nf_)
        if self.style_manipulation:
            self.to_square = FullyConnectedLayer(w_dim, 16 * 16, activation="lrelu")
        self.to_style = ToStyle(nf_(16), nf_(4) * 2)
        self.dec = Decoder(res_log2, w_dim + nf_(4) * 2, use_noise, demodulate, img_channels, nf_)

    def forward(self, images_in, masks_in, ws, noise_mode="random", return_stg1=False, smm_maps=None):
        """ws [B, num_ws, 512]; smm_maps = (stage-1 map [B, L, 180], stage-2 map [B, 512, 16, 16]) or None
        (random, as the official code). Returns the final image [B,3,R,R] (and stage 1 if return_stg1)."""
        map1, map2 = smm_maps if smm_maps is not None else (None, None)
        out_stg1 = self.first_stage(images_in, masks_in, ws, noise_mode=noise_mode, mul_map=map1)
        x = images_in * masks_in + out_stg1 * (1 - masks_in)
        e_features = self.enc(torch.cat([masks_in - 0.5, x, images_in * masks_in], dim=1))
        fea_16 = e_features[4]
        if self.style_manipulation:
            if map2 is None:
                map2 = smm_dropout_map(fea_16)
            add_n = self.to_square(ws[:, 0]).view(-1, 16, 16).unsqueeze(1)
            add_n = F.interpolate(add_n, size=fea_16.shape[-2:], mode="bilinear", align_corners=False)
            fea_16 = fea_16 * map2 + add_n * (1 - map2)
        e_features[4] = fea_16  # the mixed map is also the 16x16 skip
        gs = self.to_style(fea_16)
        img = self.dec(fea_16, ws, gs, e_features, noise_mode=noise_mode)
        img = img * (1 - masks_in) + images_in * masks_in
        return (img, out_stg1) if return_stg1 else img


class Generator(nn.Module):
    """Official-layout MAT generator: `synthesis` then `mapping` (that order is the state_dict order)."""

    def __init__(self, z_dim=512, c_dim=0, w_dim=512, img_resolution=512, img_channels=3, arch=None):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNet(w_dim, img_resolution, img_channels, arch=arch)
        self.mapping = MappingNet(
            z_dim, c_dim, w_dim, self.synthesis.num_layers, **(arch.mapping if arch is not None else {})
        )

    @classmethod
    def from_config(cls, cfg) -> "Generator":
        """The generator of a `mat_jax.models.MATConfig` (see `torch_twin.config.arch_of`)."""
        from mat_jax.torch_twin.config import arch_of

        a = arch_of(cfg)
        return cls(cfg.z_dim, cfg.c_dim, cfg.w_dim, cfg.resolution, cfg.img_channels, arch=a)

    def forward(
        self,
        images_in,
        masks_in,
        z,
        c=None,
        truncation_psi=1,
        truncation_cutoff=None,
        skip_w_avg_update=False,
        noise_mode="random",
        return_stg1=False,
        smm_maps=None,
    ):
        ws = self.mapping(
            z,
            c,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            skip_w_avg_update=skip_w_avg_update,
        )
        return self.synthesis(
            images_in, masks_in, ws, noise_mode=noise_mode, return_stg1=return_stg1, smm_maps=smm_maps
        )
