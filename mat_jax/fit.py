"""Any-size images through a fixed-grid MAT: pad (or resize) to the model grid, inpaint K variants, paste back.

The one path from a photo and its mask at full resolution to K filled photos at full resolution, used by
`mat-jax inpaint` and `mat-jax serve`. Masks are `[H, W, 1]` with 1 = known pixel, 0 = hole (official MAT).
Images are reflect-padded together with their masks (so hidden pixels never leak in as context) up to multiples of
the model resolution R per side, as the official script runs them; const noise exists only at R x R, so other grids
fall back to random noise (as the official script). Known pixels of every output are the input's, bit for bit.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from PIL import Image

from mat_jax import viz
from mat_jax.inference import Inpainter


def fit_to_model(image_HxWx3: np.ndarray, mask_HxWx1: np.ndarray, r: int, resize: bool = False):
    """Reflect-pad a uint8 image and its mask (1 = known) up to multiples of r per side, or resize both to r x r;
    returns (image [H',W',3] uint8, mask [H',W',1] float32, restore) where restore maps a uint8 output to H x W."""
    h, w = image_HxWx3.shape[:2]
    if resize:
        img = np.asarray(Image.fromarray(image_HxWx3).resize((r, r), Image.BICUBIC))
        m = np.asarray(Image.fromarray((mask_HxWx1[..., 0] * 255).astype(np.uint8)).resize((r, r), Image.NEAREST))
        m = (m >= 128).astype(np.float32)[..., None]

        def restore(out_u8):
            return np.asarray(Image.fromarray(out_u8).resize((w, h), Image.BICUBIC))

        return img, m, restore
    pads = ((0, -h % r), (0, -w % r))
    mode = "reflect" if min(h, w) > 1 else "edge"
    img = np.pad(image_HxWx3, pads + ((0, 0),), mode=mode)
    m = np.pad(np.asarray(mask_HxWx1, np.float32), pads + ((0, 0),), mode=mode)
    return img, m, lambda out_u8: out_u8[:h, :w]


def grid_noise_mode(noise_mode: str, hw: tuple[int, int], r: int) -> str:
    """The noise mode a padded grid of size hw can run: 'const' exists only at r x r, elsewhere 'random'."""
    return "random" if noise_mode == "const" and tuple(hw) != (r, r) else noise_mode


def paste_known(image_HxWx3: np.ndarray, mask_HxWx1: np.ndarray, fill_HxWx3: np.ndarray) -> np.ndarray:
    """The fill inside the hole, the input everywhere else (uint8; mask 1 = known)."""
    return np.where(np.asarray(mask_HxWx1) >= 0.5, image_HxWx3, fill_HxWx3)


@dataclasses.dataclass(frozen=True)
class Fills:
    """K inpainted variants of one image at its own size, with what produced them."""

    images: list[np.ndarray]  # K x [H, W, 3] uint8, known pixels = the input's
    seeds: list[int]  # variant i came from seeds[i] alone
    grid_hw: tuple[int, int]  # the padded size the network ran at
    noise_mode: str  # the noise mode it ran with (const falls back to random off the native grid)


def inpaint_variants(
    inpainter: Inpainter | Callable,
    image_HxWx3: np.ndarray,
    mask_HxWx1: np.ndarray,
    seeds: list[int],
    *,
    c_1xC: np.ndarray | None = None,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    resize: bool = False,
) -> Fills:
    """K = len(seeds) pluralistic fills of one uint8 image (mask 1 = known) in ONE batched forward; variant i
    depends only on seeds[i] (see `Inpainter(seeds=...)`), not on K. c_1xC: one-hot class of a conditional model."""
    r = inpainter.cfg.resolution
    img_r, mask_r, restore = fit_to_model(image_HxWx3, mask_HxWx1, r, resize)
    k = len(seeds)
    x_KxHxWx3 = np.repeat((img_r.astype(np.float32) / 127.5 - 1.0)[None], k, axis=0)
    m_KxHxWx1 = np.repeat(mask_r[None], k, axis=0)
    mode = grid_noise_mode(noise_mode, img_r.shape[:2], r)
    c = None if c_1xC is None else np.repeat(c_1xC, k, axis=0)
    final, _ = inpainter(x_KxHxWx3, m_KxHxWx1, c=c, seeds=list(seeds), truncation_psi=truncation_psi, noise_mode=mode)
    outs = [paste_known(image_HxWx3, mask_HxWx1, restore(viz.to_uint8(f))) for f in final]
    return Fills(outs, [int(s) for s in seeds], tuple(img_r.shape[:2]), mode)
