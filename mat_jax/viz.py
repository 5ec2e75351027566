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


PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def _ticks(lo: float, hi: float, n: int = 5) -> list[tuple[float, str]]:
    """n evenly spaced (value, label) pairs, labels with enough decimals to tell neighbours apart."""
    step = (hi - lo) / (n - 1)
    decimals = max(0, 1 - int(np.floor(np.log10(step)))) if step > 0 else 2
    return [(lo + step * i, f"{lo + step * i:.{min(decimals, 8)}f}") for i in range(n)]


def line_plot(
    series: dict[str, tuple[list[float], list[float]]],
    title: str,
    xlabel: str,
    size: tuple[int, int] = (640, 400),
) -> np.ndarray:
    """Lines (one per name, x and y lists; a single point is drawn as a dot) on labelled axes with a legend ->
    uint8 [height, width, 3] picture of `size` (width, height). Drawn with PIL: the package has no plotting
    dependency."""
    width, height = size
    left, right, top, bottom = 64, 16, 24, 40
    pil = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(pil)
    xs = [float(x) for xv, _ in series.values() for x in xv]
    ys = [float(y) for _, yv in series.values() for y in yv if np.isfinite(y)]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        pad = abs(y0) * 0.05 or 0.5
        y0, y1 = y0 - pad, y1 + pad

    def px(x, y):
        u = left + (x - x0) / (x1 - x0) * (width - left - right)
        return u, top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    draw.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))
    for t, label in _ticks(x0, x1):
        x, _ = px(t, y0)
        draw.line([(x, height - bottom), (x, height - bottom + 4)], fill=(0, 0, 0))
        draw.text((x - 3 * len(label), height - bottom + 6), label, fill=(0, 0, 0))
    for t, label in _ticks(y0, y1):
        _, y = px(x0, t)
        draw.line([(left - 4, y), (left, y)], fill=(0, 0, 0))
        draw.text((2, y - 6), label[:10], fill=(0, 0, 0))
    draw.text((left, 6), title, fill=(0, 0, 0))
    draw.text(((width - 6 * len(xlabel)) // 2, height - 16), xlabel, fill=(0, 0, 0))
    for i, (name, (xv, yv)) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [px(float(x), float(y)) for x, y in zip(xv, yv, strict=True) if np.isfinite(y)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        for x, y in pts:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=color)
        ly = top + 6 + 14 * i
        draw.line([(width - right - 130, ly + 6), (width - right - 112, ly + 6)], fill=color, width=3)
        draw.text((width - right - 108, ly), name[:18], fill=(0, 0, 0))
    return np.asarray(pil)
