"""MAT's free-form large-hole mask generators (rectangles + brush strokes), seeded per record.

Mask convention (everywhere in mat_jax): **1 = known pixel, 0 = hole**, float32 `[H, W, 1]`.

Why a port and not a re-design: MAT was trained on masks from `datasets/mask_generator_{512,256}[_small].py`
and evaluated on masks from the same family, so we reproduce that generator's *behaviour* exactly, including
the order in which it consumes random numbers. The official code draws from NumPy's global legacy RNG; we draw
from an explicit `np.random.RandomState`, which has the same `randint/uniform/normal/random_sample` semantics.
Hence `mat_random_mask(512, np.random.RandomState(s))` equals the official `np.random.seed(s); RandomMask(512)`
(transposed to `[H, W, 1]`), and N successive calls on one RandomState equal N successive official calls.
This was verified bit-for-bit against the official generator (see tests/test_data_masks.py).

Official quirks and what we do:
* Per stroke, two uniforms decide PIL transposes whose result is discarded (no-ops). We draw them (the draw
  order must stay the same) and, by default, also discard them. `apply_stroke_flips=True` applies them
  (a different, arguably intended, distribution; seeds then no longer reproduce official masks).
* `hole_range` with a small sum makes a count bound `int(k * coef)` zero and the official code crashes in
  `randint(0)`; we raise a ValueError that says why instead.
* Rejection sampling restarts the whole procedure (the RNG continues) while the hole ratio is outside
  the *open* interval `(hole_range[0], hole_range[1])`, so a mask always has a hole and a known pixel.
* The stroke geometry (widths 12-48 px, radius sqrt(2)*s/8) is the same at 256 and 512; only the three
  count bounds differ between the variants.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw


@dataclasses.dataclass(frozen=True)
class MatMaskSpec:
    """Count bounds of one official variant (exclusive upper bounds of `randint`)."""

    rect_small_tries: int  # rectangles with sides < s/2
    rect_large_tries: int  # rectangles with sides < s
    stroke_tries: int  # brush strokes


# Variant name -> (resolution the official file was written for, spec). The geometry is resolution-agnostic,
# so any variant can be drawn at any resolution; the name only selects the count bounds.
MAT_VARIANTS: dict[str, MatMaskSpec] = {
    "mat_large_512": MatMaskSpec(5, 3, 9),  # mask_generator_512.py (training masks at 512)
    "mat_small_512": MatMaskSpec(3, 2, 4),  # mask_generator_512_small.py
    "mat_large_256": MatMaskSpec(4, 2, 8),  # mask_generator_256.py (training masks at 256)
    "mat_small_256": MatMaskSpec(2, 2, 3),  # mask_generator_256_small.py
}

# Stroke geometry shared by all variants (official RandomBrush defaults).
_MIN_VERTEX, _MAX_VERTEX = 4, 18  # randint upper bound is exclusive: 4..17 vertices
_MEAN_ANGLE = 2 * math.pi / 5
_ANGLE_RANGE = 2 * math.pi / 15
_MIN_WIDTH, _MAX_WIDTH = 12, 48


def mat_spec(kind: str, resolution: int) -> MatMaskSpec:
    """Resolve `mat_large` / `mat_small` (picks the 512 or 256 file by resolution) or an explicit variant name.

    Resolutions other than 256/512 use the 512 counts for >= 384 and the 256 counts below (the official
    `generate_image.py` uses the 512 generator at every resolution; pass `mat_large_512` to get that).
    """
    if kind in MAT_VARIANTS:
        return MAT_VARIANTS[kind]
    if kind in ("mat_large", "mat_small"):
        suffix = "512" if resolution >= 384 else "256"
        return MAT_VARIANTS[f"{kind}_{suffix}"]
    raise ValueError(f"unknown MAT mask kind {kind!r}; expected mat_large, mat_small or one of {list(MAT_VARIANTS)}")


def _brush_strokes(rs: np.random.RandomState, max_tries: int, s: int, apply_stroke_flips: bool) -> np.ndarray:
    """Stroke canvas `[s, s]` uint8, 1 = stroke (hole). RNG draws in the official order."""
    avg_radius = math.sqrt(2 * s * s) / 8
    radius_scale = float(avg_radius // 2)  # official: floor division of a float
    canvas = Image.new("L", (s, s), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(rs.randint(max_tries)):
        num_vertex = rs.randint(_MIN_VERTEX, _MAX_VERTEX)
        angle_min = _MEAN_ANGLE - rs.uniform(0, _ANGLE_RANGE)
        angle_max = _MEAN_ANGLE + rs.uniform(0, _ANGLE_RANGE)
        angles = [
            2 * math.pi - rs.uniform(angle_min, angle_max) if i % 2 == 0 else rs.uniform(angle_min, angle_max)
            for i in range(num_vertex)
        ]
        x0 = int(rs.randint(0, s))
        y0 = int(rs.randint(0, s))
        vertices = [(x0, y0)]
        for angle in angles:
            r = min(max(rs.normal(avg_radius, radius_scale), 0.0), 2 * avg_radius)
            px, py = vertices[-1]
            nx = min(max(px + r * math.cos(angle), 0.0), float(s))
            ny = min(max(py + r * math.sin(angle), 0.0), float(s))
            vertices.append((int(nx), int(ny)))
        width = int(rs.uniform(_MIN_WIDTH, _MAX_WIDTH))
        draw.line(vertices, fill=1, width=width)
        half = width // 2
        for vx, vy in vertices:
            draw.ellipse((vx - half, vy - half, vx + half, vy + half), fill=1)
        # [quirk] two draws for PIL transposes whose result the official code discards.
        flip_lr = rs.random_sample() > 0.5
        flip_tb = rs.random_sample() > 0.5
        if apply_stroke_flips:
            if flip_lr:
                canvas = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if flip_tb:
                canvas = canvas.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            draw = ImageDraw.Draw(canvas)
    strokes = np.asarray(canvas, dtype=np.uint8)
    if rs.random_sample() > 0.5:
        strokes = strokes[::-1, :]
    if rs.random_sample() > 0.5:
        strokes = strokes[:, ::-1]
    return strokes


def _rectangles(rs: np.random.RandomState, known: np.ndarray, max_tries: int, max_size: int) -> None:
    """Punch up to `max_tries - 1` axis-aligned holes into `known` ([s, s] bool, in place)."""
    s = known.shape[0]
    for _ in range(rs.randint(max_tries)):
        w = rs.randint(max_size)
        h = rs.randint(max_size)
        x = rs.randint(-(w // 2), s - w + w // 2)  # may start left of the image: clipped below
        y = rs.randint(-(h // 2), s - h + h // 2)
        known[max(y, 0) : min(y + h, s), max(x, 0) : min(x + w, s)] = False


def mat_random_mask(
    resolution: int,
    rs: np.random.RandomState,
    *,
    kind: str = "mat_large",
    hole_range: tuple[float, float] = (0.0, 1.0),
    apply_stroke_flips: bool = False,
) -> np.ndarray:
    """One official-style free-form mask. Returns `[R, R, 1]` float32, **1 = known, 0 = hole**.

    `rs` is consumed exactly as the official code consumes NumPy's global RNG, so pass
    `np.random.RandomState(seed)` to reproduce `np.random.seed(seed); RandomMask(R, hole_range)`.
    """
    spec = mat_spec(kind, resolution)
    lo, hi = float(hole_range[0]), float(hole_range[1])
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"hole_range must satisfy 0 <= lo < hi <= 1, got {hole_range!r}")
    coef = min(lo + hi, 1.0)
    tries = (int(spec.rect_small_tries * coef), int(spec.rect_large_tries * coef), int(spec.stroke_tries * coef))
    if min(tries) == 0:
        raise ValueError(
            f"hole_range={hole_range!r} scales a count bound of {kind!r} to 0 ({tries}); the official generator "
            "crashes here (randint(0)). Use a hole_range whose sum is larger (>= 1/2 is always safe)."
        )
    s = int(resolution)
    while True:
        known = np.ones((s, s), dtype=bool)
        _rectangles(rs, known, tries[0], s // 2)
        _rectangles(rs, known, tries[1], s)
        known &= _brush_strokes(rs, tries[2], s, apply_stroke_flips) == 0
        hole_ratio = 1.0 - known.mean()
        if lo < hole_ratio < hi:
            return known.astype(np.float32)[:, :, None]  # [R, R, 1]
