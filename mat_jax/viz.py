"""Pictures: [-1,1] images to uint8, masked-input overlays, and labelled PNG grids."""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image, ImageDraw


def to_uint8(x: np.ndarray, xp=np) -> np.ndarray:
    """[..., 3] float in [-1, 1] -> uint8 (round(x*127.5 + 127.5), clipped), as the official saver. `xp`: the array
    module (numpy, or jax.numpy inside a jitted function: the evaluation quantises on the device)."""
    return xp.clip(xp.rint(xp.asarray(x, xp.float32) * 127.5 + 127.5), 0, 255).astype(xp.uint8)


def masked_input(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The input as the network sees it: holes (mask 0) painted mid-grey. [H,W,3] in [-1,1]."""
    return np.where(np.asarray(mask) >= 0.5, image, 0.0)


def mask_rgb(mask: np.ndarray) -> np.ndarray:
    """[H,W,1] mask (1 = known) -> [H,W,3] in [-1,1] (white = known, black = hole)."""
    return np.repeat(np.asarray(mask, np.float32) * 2 - 1, 3, axis=-1)


def grid(
    rows: list[list[np.ndarray]],
    col_titles: list[str] | None = None,
    pad: int = 4,
    title_height: int = 18,
    row_titles: list[str] | None = None,
    row_title_width: int = 132,
) -> np.ndarray:
    """Tile rows of [H,W,3] images in [-1,1] into one uint8 picture, with optional column titles (each cut to
    what fits above its column) and row titles (in a left margin, cut to what fits)."""
    h, w = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    top = title_height if col_titles else 0
    left = row_title_width if row_titles else 0
    canvas = np.full((top + len(rows) * (h + pad) + pad, left + ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            y, x = top + pad + i * (h + pad), left + pad + j * (w + pad)
            canvas[y : y + h, x : x + w] = to_uint8(im)
    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)
    for j, t in enumerate(col_titles or ()):
        draw.text((left + pad + j * (w + pad) + 1, max(0, (top - 12) // 2)), t[: max(1, w // 6)], fill=(0, 0, 0))
    for i, t in enumerate(row_titles or ()):
        draw.text((pad, top + pad + i * (h + pad) + h // 2 - 6), t[: max(1, (left - pad) // 6)], fill=(0, 0, 0))
    return np.asarray(pil)


SAMPLE_GRID_COLUMNS = ("input", "mask", "stage 1", "output", "real")


def sample_grid(images_NxRxRx3, masks_NxRxRx1, stage1_NxRxRx3, final_NxRxRx3) -> np.ndarray:
    """The training sample grid, one row per sample: masked input (holes grey), mask (white = known), stage 1,
    output, real -> uint8 [H, W, 3]. Images in [-1, 1]; masks 1 = known."""
    images, masks = np.asarray(images_NxRxRx3, np.float32), np.asarray(masks_NxRxRx1, np.float32)
    rows = [
        [
            masked_input(images[i], masks[i]),
            mask_rgb(masks[i]),
            np.asarray(stage1_NxRxRx3[i]),
            np.asarray(final_NxRxRx3[i]),
            images[i],
        ]
        for i in range(images.shape[0])
    ]
    return grid(rows, list(SAMPLE_GRID_COLUMNS), pad=2, title_height=12)


def thumbnail(image_u8: np.ndarray, size: int = 256) -> np.ndarray:
    """Fit an [H,W,3] uint8 image into a size x size white square (aspect kept) -> float [-1, 1]."""
    h, w = image_u8.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(image_u8).resize((nw, nh), Image.BICUBIC))
    canvas = np.full((size, size, 3), 255, np.uint8)
    canvas[(size - nh) // 2 : (size - nh) // 2 + nh, (size - nw) // 2 : (size - nw) // 2 + nw] = small
    return canvas.astype(np.float32) / 127.5 - 1.0


def save_png(path: str | pathlib.Path, array: np.ndarray) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    tmp.replace(path)
    return path
