"""MAT's two-branch discriminator (reference §3), official parameter names.

Two independent ResNet-style branches: `Dis`/`fc0`/`fc1` on [mask-0.5, image] and `Dis_stg1`/... (half
the widths) on [mask-0.5, stage-1 image]. Each ends with minibatch-std, a 3x3 conv, an NCHW flatten and
two FCs. Conditional (c_dim > 0): a label `mapping` (registered first, as officially) gives cmap [B, nf(4)],
both fc1 heads output nf(4) features and the logits are the projections <x, cmap> / sqrt(nf(4)).
Mask convention: 1 = known pixel, 0 = hole.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from mat_jax.models.constants import official_nf as nf
from mat_jax.torch_twin.layers import Conv2dLayer, FullyConnectedLayer, MappingNet

__all__ = ["Discriminator", "MinibatchStdLayer"]


class DisFromRGB(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = Conv2dLayer(in_channels, out_channels, 1, activation="lrelu")

    def forward(self, x):
        return self.conv(x)


class DisBlock(nn.Module):
    """out = skip(x)·√½ + conv1(conv0(x))·√½, both halving the resolution."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x):
        skip = self.skip(x, gain=math.sqrt(0.5))
        return skip + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class MinibatchStdLayer(nn.Module):
    """Appends the group std as extra channel(s); sample i belongs to group i mod (N / G) (strided)."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size else n  # None / 0: the whole batch
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


def _branch(res_log2, img_channels, div, mbstd_group_size, mbstd_num_channels, nf=nf):
    layers = [DisFromRGB(img_channels + 1, nf(2**res_log2) // div)]
    for res in range(res_log2, 2, -1):
        layers.append(DisBlock(nf(2**res) // div, nf(2 ** (res - 1)) // div))
    layers.append(MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else nn.Identity())
    layers.append(Conv2dLayer(nf(4) // div + mbstd_num_channels, nf(4) // div, 3, activation="lrelu"))
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """forward(images [B,C,R,R], masks [B,1,R,R], images_stg1 [B,C,R,R], c [B,c_dim] or None)
    -> (logit [B,1], logit_stg1 [B,1]).

    mbstd_group_size: 4 is the constructor default (used by the golden data); train.py uses 8."""

    def __init__(
        self, c_dim=0, img_resolution=512, img_channels=3, mbstd_group_size=4, mbstd_num_channels=1, arch=None
    ):
        super().__init__()
        if arch is None and img_resolution not in (128, 256, 512):
            raise ValueError(
                f"MAT is defined for resolutions 128, 256, 512; got {img_resolution} "
                "(other architectures: Discriminator.from_config)"
            )
        nf_ = nf if arch is None else arch.nf
        res_log2 = int(math.log2(img_resolution))
        self.img_resolution, self.c_dim = img_resolution, c_dim
        self.cmap_dim = nf_(4) if c_dim > 0 else 0
        out_dim = self.cmap_dim or 1
        if c_dim > 0:
            mapping = dict(arch.mapping) if arch is not None else {}
            mapping["w_avg_beta"] = None
            self.mapping = MappingNet(0, c_dim, self.cmap_dim, None, **mapping)
        self.Dis = _branch(res_log2, img_channels, 1, mbstd_group_size, mbstd_num_channels, nf_)
        self.fc0 = FullyConnectedLayer(nf_(4) * 16, nf_(4), activation="lrelu")
        self.fc1 = FullyConnectedLayer(nf_(4), out_dim)
        self.Dis_stg1 = _branch(res_log2, img_channels, 2, mbstd_group_size, mbstd_num_channels, nf_)
        self.fc0_stg1 = FullyConnectedLayer(nf_(4) // 2 * 16, nf_(4) // 2, activation="lrelu")
        self.fc1_stg1 = FullyConnectedLayer(nf_(4) // 2, out_dim)

    @classmethod
    def from_config(cls, cfg) -> "Discriminator":
        """The discriminator of a `mat_jax.models.MATConfig` (see `torch_twin.config.arch_of`)."""
        from mat_jax.torch_twin.config import arch_of

        return cls(
            cfg.c_dim, cfg.resolution, cfg.img_channels, cfg.mbstd_group_size, cfg.mbstd_num_channels, arch=arch_of(cfg)
        )

    def forward(self, images_in, masks_in, images_stg1, c=None):
        x = self.Dis(torch.cat([masks_in - 0.5, images_in], dim=1))
        x = self.fc1(self.fc0(x.flatten(start_dim=1)))  # NCHW flatten -> [B, 1] (or [B, cmap_dim])
        x1 = self.Dis_stg1(torch.cat([masks_in - 0.5, images_stg1], dim=1))
        x1 = self.fc1_stg1(self.fc0_stg1(x1.flatten(start_dim=1)))
        if self.cmap_dim > 0:
            if c is None:
                raise ValueError(f"this discriminator is conditional (c_dim={self.c_dim}); pass c")
            cmap = self.mapping(None, c)  # [B, cmap_dim]
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
            x1 = (x1 * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x, x1
