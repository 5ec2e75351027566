"""LaMa-style mask kinds (thin / medium / thick irregular strokes, boxes, outpainting borders) and the
dispatcher `make_mask(kind, ...)` over every kind mat_jax knows.

Mask convention: **1 = known pixel, 0 = hole**, float32 `[H, W, 1]`.

Why these kinds: users comparing MAT with LaMa-family models evaluate on LaMa's thin/medium/thick mask
settings and on outpainting. The presets follow the parameters of LaMa's published data-generation configs
(stroke count range, maximum length / width / turning angle, box sizes; values doubled at 512), but the
geometry is drawn by our own PIL code from a `np.random.Generator`, so a seed does not reproduce a LaMa mask
file; use the authors' mask files (see `sources.MaskFolderSource`) for paper-exact comparisons.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw

from mat_jax.data import masks as mat_masks


@dataclasses.dataclass(frozen=True)
class StrokePreset:
    """Irregular strokes at 256 px (scaled linearly with resolution); optional extra boxes."""

    min_times: int
    max_times: int  # inclusive
    max_len: float
    max_width: float
    max_angle: float = 4.0
    box_proba: float = 0.0
    box_min: float = 30
    box_max: float = 100
    box_max_times: int = 3  # inclusive
    box_margin: float = 10
    hole_range: tuple[float, float] = (0.0, 1.0)


LAMA_PRESETS: dict[str, StrokePreset] = {
    "lama_thin": StrokePreset(min_times=4, max_times=50, max_len=40, max_width=10),
    "lama_medium": StrokePreset(
        min_times=4,
        max_times=5,
        max_len=100,
        max_width=50,
        box_proba=0.3,
        box_min=10,
        box_max=50,
        box_max_times=5,
        box_margin=0,
        hole_range=(0.0, 0.7),
    ),
    "lama_thick": StrokePreset(min_times=1, max_times=5, max_len=100, max_width=50, box_proba=0.3),
}
BOX_KIND = "boxes"
OUTPAINT_KIND = "outpaint"
MAT_KINDS = ("mat_large", "mat_small", *mat_masks.MAT_VARIANTS)
ALL_KINDS = (*MAT_KINDS, *LAMA_PRESETS, BOX_KIND, OUTPAINT_KIND)


def _strokes(rng: np.random.Generator, holes: Image.Image, p: StrokePreset, scale: float) -> None:
    """Random polylines: each of `times` strokes has 1-5 segments with random turn, length and width."""
    draw = ImageDraw.Draw(holes)
    s_w, s_h = holes.size
    for _ in range(int(rng.integers(p.min_times, p.max_times + 1))):
        x, y = float(rng.integers(0, s_w)), float(rng.integers(0, s_h))
        for seg in range(1 + int(rng.integers(0, 5))):
            angle = 0.01 + rng.uniform(0, p.max_angle)
            if seg % 2 == 0:
                angle = 2 * math.pi - angle
            length = scale * (10 + rng.uniform(0, p.max_len))
            width = max(1, int(scale * (5 + rng.integers(0, int(p.max_width)))))
            nx = min(max(x + length * math.sin(angle), 0.0), s_w - 1.0)
            ny = min(max(y + length * math.cos(angle), 0.0), s_h - 1.0)
            draw.line([(x, y), (nx, ny)], fill=1, width=width)
            x, y = nx, ny


def _boxes(rng: np.random.Generator, holes: np.ndarray, lo: float, hi: float, n: int, margin: int) -> None:
    h, w = holes.shape
    lo, hi = int(lo), max(int(hi), int(lo) + 1)
    for _ in range(n):
        bw = int(rng.integers(lo, min(hi, w - 2 * margin) + 1))
        bh = int(rng.integers(lo, min(hi, h - 2 * margin) + 1))
        x0 = int(rng.integers(margin, max(margin, w - margin - bw) + 1))
        y0 = int(rng.integers(margin, max(margin, h - margin - bh) + 1))
        holes[y0 : y0 + bh, x0 : x0 + bw] = 1


def _outpaint(rng: np.random.Generator, holes: np.ndarray, min_frac: float = 0.04, max_frac: float = 0.25) -> None:
    """Hole bands along a random non-empty subset of the four borders (each side with p = 0.5)."""
    h, w = holes.shape
    sides = rng.random(4) < 0.5
    if not sides.any():
        sides[int(rng.integers(0, 4))] = True
    top, bottom, left, right = (int(round(rng.uniform(min_frac, max_frac) * d)) for d in (h, h, w, w))
    if sides[0]:
        holes[:top] = 1
    if sides[1]:
        holes[h - bottom :] = 1
    if sides[2]:
        holes[:, :left] = 1
    if sides[3]:
        holes[:, w - right :] = 1


def lama_style_mask(kind: str, resolution: int, rng: np.random.Generator) -> np.ndarray:
    """One `[R, R, 1]` float32 mask (**1 = known, 0 = hole**) of a LaMa-style kind.

    Masks with no hole or no known pixel (or outside the preset's hole range) are redrawn.
    """
    s = int(resolution)
    scale = s / 256.0
    while True:
        if kind in LAMA_PRESETS:
            p = LAMA_PRESETS[kind]
            canvas = Image.new("L", (s, s), 0)
            _strokes(rng, canvas, p, scale)
            holes = np.array(canvas, dtype=np.uint8)
            if p.box_proba > 0 and rng.random() < p.box_proba:
                n = int(rng.integers(1, p.box_max_times + 1))
                _boxes(rng, holes, p.box_min * scale, p.box_max * scale, n, int(p.box_margin * scale))
            lo, hi = p.hole_range
        elif kind == BOX_KIND:
            holes = np.zeros((s, s), np.uint8)
            _boxes(rng, holes, 30 * scale, 150 * scale, int(rng.integers(1, 4)), int(10 * scale))
            lo, hi = 0.0, 1.0
        elif kind == OUTPAINT_KIND:
            holes = np.zeros((s, s), np.uint8)
            _outpaint(rng, holes)
            lo, hi = 0.0, 1.0
        else:
            raise ValueError(f"unknown LaMa-style mask kind {kind!r}; expected one of {ALL_KINDS}")
        ratio = float(holes.mean())
        if lo < ratio < hi:
            return (1.0 - holes.astype(np.float32))[:, :, None]  # [R, R, 1]


def record_seed(seed: int, index: int, stream: int = 0) -> int:
    """A 32-bit seed for record `index` of a run seeded `seed` (independent per `stream`).

    Used as `np.random.RandomState(record_seed(...))` for MAT masks, so a mask written by `mat-jax masks`
    or drawn in the pipeline can be regenerated by the official code with `np.random.seed(record_seed(...))`.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return int(np.random.SeedSequence((int(seed), int(index), int(stream))).generate_state(1, np.uint32)[0])


def make_mask(
    kind: str,
    resolution: int,
    seed: int,
    index: int = 0,
    *,
    hole_range: tuple[float, float] = (0.0, 1.0),
    apply_stroke_flips: bool = False,
) -> np.ndarray:
    """Mask number `index` of the deterministic set (`kind`, `resolution`, `seed`): `[R, R, 1]` float32,
    **1 = known, 0 = hole**. Pure function of its arguments (no global RNG), so workers and hosts agree.

    `hole_range` applies to the MAT kinds (official rejection interval); LaMa-style kinds use their preset.
    """
    rs_seed = record_seed(seed, index, stream=0)
    if kind in MAT_KINDS:
        return mat_masks.mat_random_mask(
            resolution,
            np.random.RandomState(rs_seed),
            kind=kind,
            hole_range=hole_range,
            apply_stroke_flips=apply_stroke_flips,
        )
    return lama_style_mask(kind, resolution, np.random.default_rng(rs_seed))
