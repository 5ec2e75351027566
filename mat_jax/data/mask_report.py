"""Hole-ratio statistics of a mask set: a decile histogram as a text table and as a PNG bar chart.

Drawn with PIL so the `masks` command needs no plotting library.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

DECILE_EDGES = np.linspace(0.0, 1.0, 11)


def decile_histogram(hole_ratios: np.ndarray) -> np.ndarray:
    """Fraction of masks whose hole ratio falls in [0, .1), [.1, .2), ..., [.9, 1.0]; sums to 1."""
    r = np.asarray(hole_ratios, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no hole ratios to summarise")
    counts, _ = np.histogram(r, bins=DECILE_EDGES)
    return counts / r.size


def summary(hole_ratios: np.ndarray) -> dict[str, float]:
    r = np.asarray(hole_ratios, dtype=np.float64)
    p10, p50, p90 = np.quantile(r, [0.1, 0.5, 0.9])
    return {
        "count": int(r.size),
        "mean": float(r.mean()),
        "median": float(p50),
        "p10": float(p10),
        "p90": float(p90),
        "min": float(r.min()),
        "max": float(r.max()),
    }


def histogram_table(hole_ratios: np.ndarray, title: str = "hole ratio") -> str:
    """Text table: one row per decile with count, percentage and a bar; then mean / median / p10-p90."""
    r = np.asarray(hole_ratios, dtype=np.float64)
    frac = decile_histogram(r)
    counts = np.rint(frac * r.size).astype(int)
    lines = [f"{title:<12} {'count':>7} {'share':>7}"]
    for k in range(10):
        lo, hi = DECILE_EDGES[k], DECILE_EDGES[k + 1]
        bar = "#" * int(round(frac[k] * 100))
        lines.append(f"[{lo:.1f}, {hi:.1f}{']' if k == 9 else ')'} {counts[k]:>7d} {100 * frac[k]:>6.1f}% {bar}")
    s = summary(r)
    lines.append(
        f"n={s['count']}  mean={s['mean']:.3f}  median={s['median']:.3f}  p10-p90={s['p10']:.3f}-{s['p90']:.3f}"
        f"  min={s['min']:.4f}  max={s['max']:.4f}"
    )
    return "\n".join(lines)


def histogram_image(hole_ratios: np.ndarray, title: str, size: tuple[int, int] = (640, 400)) -> Image.Image:
    """Bar chart of the decile histogram (x: hole ratio, y: share of masks) as an RGB PIL image."""
    frac = decile_histogram(hole_ratios)
    w, h = size
    left, right, top, bottom = 50, 20, 40, 40
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    d.text((left, 12), title, fill="black")
    ymax = max(0.05, float(np.ceil(frac.max() * 20) / 20))  # round the axis up to 5 %
    plot_w, plot_h = w - left - right, h - top - bottom
    d.line([(left, top), (left, h - bottom), (w - right, h - bottom)], fill="black")
    for t in np.linspace(0, ymax, 6):
        y = h - bottom - t / ymax * plot_h
        d.line([(left - 4, y), (left, y)], fill="black")
        d.text((4, y - 6), f"{100 * t:.0f}%", fill="black")
    bar_w = plot_w / 10
    for k in range(10):
        x0 = left + k * bar_w
        y0 = h - bottom - frac[k] / ymax * plot_h
        d.rectangle([x0 + 3, y0, x0 + bar_w - 3, h - bottom], fill=(70, 110, 180))
        d.text((x0 + 2, h - bottom + 6), f"{DECILE_EDGES[k]:.1f}", fill="black")
    d.text((w - right - 8, h - bottom + 6), "1", fill="black")
    d.text((left + plot_w // 2 - 30, h - 16), "hole ratio", fill="black")
    return img
