"""Image decoding and the official crop / flip / value-range policy, in numpy (runs in grain workers).

Images leave this module as NHWC-per-record `[R, R, 3]` float32 (or bfloat16) in [-1, 1].

Official behaviour (datasets/dataset_512.py) that `crop="official"` reproduces: no resizing; an image with a
side shorter than R is reflect-padded on the bottom/right only (OpenCV BORDER_REFLECT = numpy "symmetric",
edge pixel repeated), then a uniformly random R x R crop is taken; grayscale is replicated to 3 channels.
The official code cannot read RGBA (4 channels fail an assertion); we drop alpha like its inference script.
EXIF orientation is ignored, as in the official loader.
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
from PIL import Image

CROPS = ("official", "center", "resize_random_crop", "resize_center_crop", "resize")
SMALL_IMAGE_POLICIES = ("reflect_pad", "resize", "error")
DTYPES = ("float32", "bfloat16")


class BadImageError(ValueError):
    """An image file that cannot be decoded (corrupt, truncated, empty, or not an image)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"bad image {where}: {reason}")
        self.where = where
        self.reason = reason


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. 16/32-bit grayscale is scaled to 8 bits (PIL's own convert would clip)."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")
    return im.convert("RGB")  # L/LA/P/PA/RGBA/CMYK/1: alpha dropped, palette expanded


def decode_image(data: bytes | str | pathlib.Path, where: str | None = None) -> np.ndarray:
    """Encoded bytes or a file path -> `[H, W, 3]` uint8 RGB. Raises BadImageError naming `where`."""
    where = where or (str(data) if isinstance(data, (str, pathlib.Path)) else "<bytes>")
    try:
        if isinstance(data, (str, pathlib.Path)):
            data = pathlib.Path(data).read_bytes()
        if len(data) == 0:
            raise BadImageError(where, "zero-byte file")
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # forces a full decode: truncated files fail here, not later
            rgb = np.asarray(_to_rgb(im), dtype=np.uint8)
    except BadImageError:
        raise
    except Image.UnidentifiedImageError as e:
        raise BadImageError(where, "not a recognised image format (wrong extension or corrupt header)") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise BadImageError(where, f"{type(e).__name__}: {e}") from e
    return rgb


def as_rgb_uint8(array: np.ndarray, where: str = "<array>") -> np.ndarray:
    """Already-decoded arrays (TFDS records, demo photos): `[H, W]`, `[H, W, 1|3|4]` -> `[H, W, 3]` uint8."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise BadImageError(where, f"expected uint8 pixels, got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise BadImageError(where, f"expected [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {a.shape}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=2)
    return a[:, :, :3]


def reflect_pad_to(image: np.ndarray, size: int) -> np.ndarray:
    """Pad bottom/right to at least `size` with edge-repeating reflection (OpenCV BORDER_REFLECT)."""
    h, w = image.shape[:2]
    pad_h, pad_w = max(0, size - h), max(0, size - w)
    if pad_h == 0 and pad_w == 0:
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")


def _resize(image: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BICUBIC))


def _resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    if min(h, w) == size:
        return image
    s = size / min(h, w)
    return _resize(image, max(size, round(h * s)), max(size, round(w * s)))


def crop_image(
    image: np.ndarray,
    resolution: int,
    rng: np.random.Generator,
    *,
    crop: str = "official",
    small_images: str = "reflect_pad",
    where: str = "<image>",
) -> np.ndarray:
    """`[H, W, 3]` uint8 -> `[R, R, 3]` uint8 under the crop policy (see CROPS / module docstring).

    `small_images` applies to the non-resizing crops when a side is < R: "reflect_pad" (official),
    "resize" (upscale the short side to R first) or "error" (BadImageError naming `where`).
    """
    r = int(resolution)
    if crop == "resize":
        return _resize(image, r, r)
    if crop in ("resize_random_crop", "resize_center_crop"):
        image = _resize_short_side(image, r)
    elif crop in ("official", "center"):
        h, w = image.shape[:2]
        if h < r or w < r:
            if small_images == "reflect_pad":
                image = reflect_pad_to(image, r)
            elif small_images == "resize":
                image = _resize_short_side(image, r)
            elif small_images == "error":
                raise BadImageError(where, f"image is {h}x{w}, smaller than the {r}x{r} crop (small_images='error')")
            else:
                raise ValueError(f"small_images must be one of {SMALL_IMAGE_POLICIES}, got {small_images!r}")
    else:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    h, w = image.shape[:2]
    if crop in ("official", "resize_random_crop"):
        top = int(rng.integers(0, h - r + 1))
        left = int(rng.integers(0, w - r + 1))
    else:
        top, left = (h - r) // 2, (w - r) // 2
    return image[top : top + r, left : left + r]


def to_model_range(image: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """uint8 `[..., 3]` -> [-1, 1] in float32 or bfloat16 (`x / 127.5 - 1`, as the official training loop)."""
    x = image.astype(np.float32) / 127.5 - 1.0
    if dtype == "float32":
        return x
    if dtype == "bfloat16":
        import ml_dtypes  # ships with jax

        return x.astype(ml_dtypes.bfloat16)
    raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")


def from_model_range(x: np.ndarray) -> np.ndarray:
    """[-1, 1] -> uint8 with the official rounding `round(x * 127.5 + 127.5)` clamped to [0, 255]."""
    return np.clip(np.rint(np.asarray(x, np.float32) * 127.5 + 127.5), 0, 255).astype(np.uint8)
