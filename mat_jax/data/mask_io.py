"""Mask conventions, conversions and mask files.

mat_jax convention (the official MAT one): **1 = known pixel, 0 = hole**, float32 `[H, W, 1]`.
On disk: 8-bit grayscale PNG, **white (255) = known, black (0) = hole**.
LaMa convention: 1 (white) = hole. Convert at the boundary with `lama_to_mat` / `mat_to_lama`; never inside
the model code.

Why no thresholding by default: the official loaders divide by 255 without thresholding, so anti-aliased
mask files give fractional values and MAT's attention sees them as such. `binarize=True` (threshold 0.5) is
the option for real use; the default keeps the official semantics.
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
from PIL import Image


def lama_to_mat(mask: np.ndarray) -> np.ndarray:
    """LaMa mask (1 = hole) -> mat_jax mask (1 = known). Works on any shape and float/bool dtype."""
    return (1.0 - np.asarray(mask, dtype=np.float32)).astype(np.float32)


def mat_to_lama(mask: np.ndarray) -> np.ndarray:
    """mat_jax mask (1 = known) -> LaMa mask (1 = hole)."""
    return (1.0 - np.asarray(mask, dtype=np.float32)).astype(np.float32)


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a mat_jax mask (1 = known): `1 - mean(mask)`."""
    return float(1.0 - np.mean(mask, dtype=np.float64))


def mask_to_png_array(mask: np.ndarray) -> np.ndarray:
    """`[H, W, 1]` or `[H, W]` float mask (1 = known) -> `[H, W]` uint8 (255 = known)."""
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 3:
        if m.shape[-1] != 1:
            raise ValueError(f"mask must be [H, W] or [H, W, 1], got shape {m.shape}")
        m = m[:, :, 0]
    return np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8)


def save_mask(path: str | pathlib.Path, mask: np.ndarray) -> None:
    """Write a mat_jax mask (1 = known) as an 8-bit PNG, white = known."""
    Image.fromarray(mask_to_png_array(mask), mode="L").save(path, format="PNG")


def load_mask(
    path: str | pathlib.Path,
    *,
    convention: str = "mat",
    binarize: bool = False,
    expected_size: int | tuple[int, int] | None = None,
    warn_nonbinary: bool = False,
) -> np.ndarray:
    """Read a mask file -> `[H, W, 1]` float32 in the mat_jax convention (1 = known, 0 = hole).

    `convention`: "mat" (file white = known, the official MAT eval masks) or "lama" (file white = hole).
    RGB/RGBA/palette files are converted to luminance first. `expected_size` (R or (H, W)) raises a
    ValueError naming the file when the mask does not match the image it is paired with. `warn_nonbinary` warns
    when the file holds values other than black and white (anti-aliased brushes, JPEG masks).
    """
    if convention not in ("mat", "lama"):
        raise ValueError(f"mask convention must be 'mat' (1 = known) or 'lama' (1 = hole), got {convention!r}")
    try:
        with Image.open(path) as im:
            im.load()
            gray = np.asarray(im if im.mode == "L" else im.convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read mask file {path}: {e}") from e
    if expected_size is not None:
        hw = (expected_size, expected_size) if isinstance(expected_size, int) else tuple(expected_size)
        if gray.shape != hw:
            raise ValueError(f"mask file {path} is {gray.shape[0]}x{gray.shape[1]} (HxW), expected {hw[0]}x{hw[1]}")
    if warn_nonbinary and not np.all((gray == 0) | (gray == 1)):
        warnings.warn(f"mask {path} is not binary" + ("; thresholding at 0.5" if binarize else ""), stacklevel=2)
    if binarize:
        gray = (gray >= 0.5).astype(np.float32)
    if convention == "lama":
        gray = lama_to_mat(gray)
    return gray[:, :, None]  # [H, W, 1]
