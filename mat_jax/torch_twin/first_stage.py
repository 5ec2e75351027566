"""MAT stage 1 (coarse): partial-conv head, mask-aware transformer, SMM mixing, light style decoder.

Reference §2.7. The stage-1 SMM map (`mul_map`, values {0, 1}, [B, L_mid, 180]) is random in the official
code even at inference (dropout with training=True); pass it explicitly to replay a recorded run.
Mask convention: 1 = known pixel, 0 = hole.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mat_jax.torch_twin.layers import Conv2dLayer, Conv2dLayerPartial, FullyConnectedLayer, StyleConv, ToRGB
from mat_jax.torch_twin.transformer import (
    BasicLayer,
    PatchMerging,
    PatchUpsampling,
    feature2token,
    token2feature,
)

__all__ = ["FirstStage", "DecStyleBlock", "smm_dropout_map"]

_DEPTHS = (2, 3, 4, 3, 2)
_RATIOS = (1, 0.5, 0.5, 2, 2)
_WINDOWS = (8, 16, 16, 16, 8)
_HEADS = 6


def smm_dropout_map(like: torch.Tensor) -> torch.Tensor:
    """The official random SMM map: dropout(p=0.5, training=True) of 0.5s -> exactly {0, 1}."""
    return F.dropout(torch.ones_like(like) * 0.5, p=0.5, training=True)


class DecStyleBlock(nn.Module):
    """Stage-1 decoder block: StyleConv up 2, + skip, StyleConv, ToRGB (same 540-d style for all three)."""

    def __init__(self, res, in_channels, out_channels, style_dim, use_noise, demodulate, img_channels):
        super().__init__()
        self.conv0 = StyleConv(
            in_channels, out_channels, style_dim, res, 3, up=2, use_noise=use_noise, demodulate=demodulate
        )
        self.conv1 = StyleConv(
            out_channels, out_channels, style_dim, res, 3, use_noise=use_noise, demodulate=demodulate
        )
        self.toRGB = ToRGB(out_channels, img_channels, style_dim, kernel_size=1, demodulate=False)

    def forward(self, x, img, style, skip, noise_mode="random"):
        x = self.conv0(x, style, noise_mode=noise_mode)
        x = x + skip
        x = self.conv1(x, style, noise_mode=noise_mode)
        return x, self.toRGB(x, style, skip=img)


class FirstStage(nn.Module):
    """Defaults are the official network; the keyword arguments follow the `MATConfig.stage1_*` fields."""

    def __init__(
        self,
        img_channels,
        img_resolution=256,
        dim=180,
        w_dim=512,
        use_noise=False,
        demodulate=True,
        *,
        heads=_HEADS,
        token_res=64,
        depths=_DEPTHS,
        windows=_WINDOWS,
        mlp_ratio=2.0,
        masked_layers=2,
        shifted=True,
        style_manipulation=True,
        attention="mca",
        mask_update="window_or",
    ):
        super().__init__()
        res = token_res
        self.masked_layers, self.style_manipulation = masked_layers, style_manipulation
        self.conv_first = Conv2dLayerPartial(img_channels + 1, dim, 3, activation="lrelu")
        n_down = int(math.log2(img_resolution // res))
        self.enc_conv = nn.ModuleList(
            Conv2dLayerPartial(dim, dim, 3, activation="lrelu", down=2) for _ in range(n_down)
        )
        self.tran = nn.ModuleList()
        for i, depth in enumerate(depths):
            res = int(res * _RATIOS[i])
            if _RATIOS[i] < 1:
                resampler = PatchMerging(dim, dim, down=int(1 / _RATIOS[i]))
            elif _RATIOS[i] > 1:
                resampler = PatchUpsampling(dim, dim, up=_RATIOS[i])
            else:
                resampler = None
            self.tran.append(
                BasicLayer(
                    dim,
                    [res, res],
                    depth,
                    heads,
                    windows[i],
                    downsample=resampler,
                    mlp_ratio=mlp_ratio,
                    shifted=shifted,
                    attention=attention,
                    mask_update=mask_update,
                )
            )
        global_downs = int(math.log2(token_res // 4))  # bottleneck (token_res / 4) -> 1: 4 convs officially
        self.down_conv = nn.Sequential(
            *[Conv2dLayer(dim, dim, 3, activation="lrelu", down=2) for _ in range(global_downs)],
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        self.to_style = FullyConnectedLayer(dim, dim * 2, activation="lrelu")
        self.ws_style = FullyConnectedLayer(w_dim, dim, activation="lrelu")
        if style_manipulation:
            self.to_square = FullyConnectedLayer(dim, 16 * 16, activation="lrelu")
        self.dec_conv = nn.ModuleList()
        for _ in range(n_down):
            res = res * 2
            self.dec_conv.append(DecStyleBlock(res, dim, dim, dim * 3, use_noise, demodulate, img_channels))

    def forward(self, images_in, masks_in, ws, noise_mode="random", mul_map=None):
        """images_in [B,3,R,R] in [-1,1], masks_in [B,1,R,R], ws [B,num_ws,512] -> stage-1 image [B,3,R,R]
        composited with the known pixels. `mul_map` [B, L_mid, 180] replaces the random SMM map."""
        x = torch.cat([masks_in - 0.5, images_in * masks_in], dim=1)
        x, mask = self.conv_first(x, masks_in)
        skips = [x]
        for i, block in enumerate(self.enc_conv):  # full res -> 64
            x, mask = block(x, mask)
            if i != len(self.enc_conv) - 1:
                skips.append(x)
        x_size = tuple(x.shape[-2:])
        x, mask = feature2token(x), feature2token(mask)
        mid = len(self.tran) // 2
        for i, block in enumerate(self.tran):
            if i < mid:
                x, x_size, mask = block(x, x_size, mask if i < self.masked_layers else None)
                skips.append(x)
            elif i > mid:
                x, x_size, _ = block(x, x_size, None)
                x = x + skips[mid - i]
            else:
                x, x_size, _ = block(x, x_size, None)  # the mask of tran.1 is discarded (official)
                wv = self.ws_style(ws[:, -1])  # [B, dim]
                if self.style_manipulation:
                    if mul_map is None:
                        mul_map = smm_dropout_map(x)
                    add_n = self.to_square(wv).unsqueeze(1)  # [B, 1, 256]
                    add_n = F.interpolate(add_n, size=x.shape[1], mode="linear", align_corners=False)
                    add_n = add_n.squeeze(1).unsqueeze(-1)  # [B, L, 1]
                    x = x * mul_map + add_n * (1 - mul_map)
                gs = self.to_style(self.down_conv(token2feature(x, x_size)).flatten(start_dim=1))
                style = torch.cat([gs, wv], dim=1)  # [B, 540]: gs first (opposite of stage 2)
        x = token2feature(x, x_size).contiguous()
        img = None
        for i, block in enumerate(self.dec_conv):
            x, img = block(x, img, style, skips[len(self.dec_conv) - i - 1], noise_mode=noise_mode)
        return img * (1 - masks_in) + images_in * masks_in
