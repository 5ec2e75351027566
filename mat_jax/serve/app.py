"""The serve API as pure functions: validate a JSON request, inpaint K variants in one batch, encode the answer.

Request (`POST /api/inpaint`, JSON):
  image           PNG or JPEG, base64 (a `data:image/...;base64,` prefix is allowed); EXIF orientation applied
  mask            PNG base64 of the image's size, **white = hole** (what the user painted; alpha, when present,
                  counts as paint), converted here to the model convention mask_HxWx1 with 1 = known pixel
  k               number of variants, K_RANGE (default 1)
  seed            int (default 0): variant i uses seed + i alone, so it is the same fill whatever K is
  truncation_psi  number (default 1.0)
  noise_mode      "const" | "random" | "none" (default "const"; off the native grid const falls back to random)
  label           int, the class of a class-conditional checkpoint (required there, refused otherwise)
Answer: {"seeds": [...], "images": [PNG base64, ...], "grid": [H', W'], "noise_mode": ...}; every image is the
input's size with the input's known pixels, bit for bit. A bad request raises `RequestError` naming the field.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import json
import math

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mat_jax.fit import inpaint_variants
from mat_jax.inference import NOISE_MODES, Inpainter, label_condition

K_RANGE = (1, 8)  # variants per request (one batched forward)
DEFAULT_K = 3  # what the page starts with, compiled at startup
MAX_BODY_BYTES = 64 * 1024 * 1024  # a 2048 px PNG and its mask, base64, fit well within
IMAGE_FORMATS = ("PNG", "JPEG")
FIELDS = ("image", "mask", "k", "seed", "truncation_psi", "noise_mode", "label")


class RequestError(ValueError):
    """A request the server refuses: HTTP `status` with {"error": message, "field": field}."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status

    def payload(self) -> dict:
        return {"error": str(self), "field": self.field}


@dataclasses.dataclass(frozen=True)
class InpaintRequest:
    image_HxWx3: np.ndarray  # uint8 RGB
    mask_HxWx1: np.ndarray  # float32, 1 = known pixel, 0 = hole (converted from the page's white = hole)
    seeds: list[int]  # seed .. seed + K - 1
    truncation_psi: float
    noise_mode: str
    c_1xC: np.ndarray | None  # one-hot class of a conditional model, else None


def b64_bytes(text, field: str) -> bytes:
    """The bytes of a base64 string, with or without a `data:...;base64,` prefix."""
    if not isinstance(text, str) or not text:
        raise RequestError(field, f"{field} must be a base64 string (an image file), got {type(text).__name__}")
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if not head.endswith(";base64"):
            raise RequestError(field, f"{field}: a data URL must be base64 ('data:image/png;base64,...')")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(field, f"{field} is not valid base64") from None


def open_image(data: bytes, field: str, max_side: int, formats=IMAGE_FORMATS) -> Image.Image:
    """A PIL image of the bytes (its header checked against `formats` and `max_side`, then decoded, EXIF-upright
    as browsers show it)."""
    try:
        im = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError):
        raise RequestError(field, f"{field} is not an image ({'/'.join(formats)} expected)") from None
    except Image.DecompressionBombError:  # far past any max_side (PIL refuses it from the header)
        raise RequestError(
            field, f"{field} has far too many pixels: the server takes sides up to {max_side} px"
        ) from None
    if im.format not in formats:
        raise RequestError(field, f"{field} is a {im.format} file; send {' or '.join(formats)}")
    if max(im.size) > max_side:
        raise RequestError(field, f"{field} is {im.size[0]}x{im.size[1]}: the server takes sides up to {max_side} px")
    try:
        im.load()
        return ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError) as e:
        raise RequestError(field, f"{field} cannot be decoded: {e}") from None


def decode_image(text, max_side: int) -> np.ndarray:
    """The request's `image` -> [H, W, 3] uint8 RGB."""
    return np.asarray(open_image(b64_bytes(text, "image"), "image", max_side).convert("RGB"))


def painted_mask_to_known(im: Image.Image) -> np.ndarray:
    """A painted mask (white = hole; with alpha, paint = alpha x luminance) -> mask_HxWx1 float32, 1 = known."""
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), np.float32) / 255.0
        paint = rgba[..., 3] * (0.299 * rgba[..., 0] + 0.587 * rgba[..., 1] + 0.114 * rgba[..., 2])
    else:
        paint = np.asarray(im.convert("L"), np.float32) / 255.0
    return (paint < 0.5).astype(np.float32)[..., None]


def decode_mask(text, hw: tuple[int, int], max_side: int) -> np.ndarray:
    """The request's `mask` (PNG, white = hole, the image's size) -> mask_HxWx1, 1 = known."""
    im = open_image(b64_bytes(text, "mask"), "mask", max_side, formats=("PNG",))
    if (im.size[1], im.size[0]) != tuple(hw):
        raise RequestError("mask", f"mask is {im.size[0]}x{im.size[1]} but the image is {hw[1]}x{hw[0]} (WxH)")
    return painted_mask_to_known(im)


def int_field(body: dict, name: str, default: int | None, lo: int | None = None, hi: int | None = None):
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(name, f"{name} must be an integer, got {json.dumps(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise RequestError(name, f"{name} must be in {lo}..{hi}, got {value}")
    return value


def float_field(body: dict, name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(name, f"{name} must be a finite number, got {json.dumps(value)}")
    return float(value)


def check_body_size(n_bytes: int, limit: int = MAX_BODY_BYTES) -> None:
    """RequestError 'body' (413) for a body over the limit (checked on Content-Length, before reading it)."""
    if n_bytes > limit:
        raise RequestError("body", f"request body is {n_bytes} bytes; the limit is {limit}", status=413)


def parse_body(body: bytes, limit: int = MAX_BODY_BYTES) -> dict:
    """The JSON object of a request body; RequestError 'body' when too large (413) or not a JSON object."""
    check_body_size(len(body), limit)
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RequestError("body", f"request body is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise RequestError("body", f"request body must be a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise RequestError(unknown[0], f"unknown field {unknown[0]!r}; fields: {', '.join(FIELDS)}")
    return obj


def parse_request(obj: dict, *, c_dim: int, max_side: int) -> InpaintRequest:
    """Validate every field of a request object (cheap ones first, the images last)."""
    k = int_field(obj, "k", 1, *K_RANGE)
    seed = int_field(obj, "seed", 0, -(2**31), 2**31 - 1 - K_RANGE[1])
    psi = float_field(obj, "truncation_psi", 1.0)
    noise_mode = obj.get("noise_mode", "const")
    if noise_mode not in NOISE_MODES:
        raise RequestError("noise_mode", f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    label = int_field(obj, "label", None)
    try:
        c = label_condition(label, c_dim, "this checkpoint", name="label")
    except ValueError as e:
        raise RequestError("label", str(e)) from None
    if "image" not in obj:
        raise RequestError("image", "image is required (a PNG or JPEG, base64)")
    if "mask" not in obj:
        raise RequestError("mask", "mask is required (a PNG of the image's size, white = hole)")
    image = decode_image(obj["image"], max_side)
    mask = decode_mask(obj["mask"], image.shape[:2], max_side)
    return InpaintRequest(image, mask, [seed + i for i in range(k)], psi, noise_mode, c)


def png_bytes(image_HxWx3: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image_HxWx3).save(buf, format="PNG")
    return buf.getvalue()


def png_b64(image_HxWx3: np.ndarray) -> str:
    return base64.b64encode(png_bytes(image_HxWx3)).decode("ascii")


def inpaint(inpainter: Inpainter, req: InpaintRequest) -> dict:
    """The K fills of a validated request (one batched forward), as the JSON answer."""
    fills = inpaint_variants(
        inpainter,
        req.image_HxWx3,
        req.mask_HxWx1,
        req.seeds,
        c_1xC=req.c_1xC,
        truncation_psi=req.truncation_psi,
        noise_mode=req.noise_mode,
    )
    return {
        "seeds": fills.seeds,
        "images": [png_b64(im) for im in fills.images],
        "grid": list(fills.grid_hw),
        "noise_mode": fills.noise_mode,
    }


def info(inpainter: Inpainter, *, device: str, max_side: int) -> dict:
    """`GET /api/info`: what the page needs to know about the model and the limits."""
    cfg = inpainter.cfg
    return {
        "resolution": cfg.resolution,
        "c_dim": cfg.c_dim,
        "checkpoint": inpainter.source,
        "device": device,
        "max_side": max_side,
        "k_range": list(K_RANGE),
        "default_k": DEFAULT_K,
        "noise_modes": list(NOISE_MODES),
        "max_body_bytes": MAX_BODY_BYTES,
        "mask_convention": "white = hole (painted), converted to 1 = known for the model",
    }


def warm_up(inpainter: Inpainter, ks=(1, DEFAULT_K), log=print) -> None:
    """Compile the native R x R square for each K (const noise, psi 1) so the first request is not the slow one."""
    r = inpainter.cfg.resolution
    image = np.zeros((r, r, 3), np.uint8)
    mask = np.ones((r, r, 1), np.float32)
    mask[r // 4 : r // 2, r // 4 : r // 2] = 0
    c = label_condition(0, inpainter.cfg.c_dim) if inpainter.cfg.c_dim else None
    for k in ks:
        log(f"compiling {r}x{r}, K={k}, noise const, psi 1.0 (other sizes and settings compile on first use)")
        inpaint_variants(inpainter, image, mask, list(range(k)), c_1xC=c)
