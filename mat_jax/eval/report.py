"""Evaluation reports: the JSON every command writes, its console table, a Markdown page and the best / worst grid.

JSON: `num_images`, one key per metric (value or null), `notes` (metric -> why it is null, or the caveat that comes
with its value) and whatever else the caller adds (the protocol of `mat-jax eval`, skipped files, timing).
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from mat_jax import viz
from mat_jax.convert.atomic import atomic_output
from mat_jax.eval.score import Score

__all__ = ["METRICS", "as_json", "from_result", "table", "markdown", "ranked_grid", "write_json", "companion_paths"]

METRICS = ("fid", "p_ids", "u_ids", "kid", "psnr", "ssim", "l1", "lpips")
MEANING = {
    "fid": "Fréchet Inception distance (lower is better)",
    "p_ids": "paired Inception discriminative score (higher is better)",
    "u_ids": "unpaired Inception discriminative score (higher is better)",
    "kid": "kernel Inception distance, unbiased (lower is better)",
    "psnr": "peak signal-to-noise ratio, dB (higher is better)",
    "ssim": "structural similarity (higher is better)",
    "l1": "mean absolute error on [0, 1] (lower is better)",
    "lpips": "LPIPS AlexNet v0.1 (lower is better)",
}


def as_json(scores: dict[str, Score], num_images: int, missing: dict[str, str] | None = None, **extra) -> dict:
    """The report dict. `missing` replaces the note of a null metric (e.g. 'no --inception-weights given')."""
    out: dict = {"num_images": num_images}
    notes: dict[str, str] = {}
    for k in METRICS:
        score = scores.get(k, Score(None, "not computed"))
        out[k] = score.value
        note = score.note
        if score.value is None and missing and k in missing:
            note = missing[k]
        if note:
            notes[k] = note
    out["notes"] = notes
    out.update(extra)
    return out


def _shown(v) -> str:
    return "null" if v is None else f"{v:.4f}"


def table(rep: dict) -> str:
    rows = [f"{'metric':<8} {'value':>12}  note", f"{'images':<8} {rep['num_images']:>12}"]
    for k in METRICS:
        rows.append(f"{k:<8} {_shown(rep[k]):>12}  {rep['notes'].get(k, '')}".rstrip())
    return "\n".join(rows)


def markdown(rep: dict, title: str, grid_name: str | None = None) -> str:
    """A Markdown page: the protocol (when the report has one), the metric table with notes, skipped files, grid."""
    lines = [f"# {title}", ""]
    protocol = rep.get("protocol")
    if protocol:
        lines += ["| protocol | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in protocol.items()]
        lines.append("")
    lines += ["| metric | value | meaning | note |", "|---|---:|---|---|"]
    lines += [f"| {k} | {_shown(rep[k])} | {MEANING[k]} | {rep['notes'].get(k, '')} |" for k in METRICS]
    lines.append("")
    skipped = rep.get("skipped") or {}
    if skipped:
        lines.append(f"{len(skipped)} file(s) could not be read and were skipped:")
        lines += [f"- `{k}`: {v}" for k, v in sorted(skipped.items())]
        lines.append("")
    if rep.get("seconds") is not None:
        lines.append(f"{rep['num_images']} images in {rep['seconds']:.1f} s.")
        lines.append("")
    if grid_name:
        lines += [f"![best and worst]({grid_name})", ""]
    return "\n".join(lines)


def ranked_grid(best: list, worst: list, rank_metric: str, thumb: int = 192) -> np.ndarray:
    """Rows of (real, masked input, inpainting): the best records, then the worst, by `rank_metric` -> uint8."""
    rows, names = [], []
    for label, items in (("best", best), ("worst", worst)):
        for r in items:
            real = r.real.astype(np.float32) / 127.5 - 1.0
            shown = [r.real, viz.to_uint8(viz.masked_input(real, r.mask)), r.fake]
            rows.append([viz.thumbnail(im, thumb) for im in shown])
            names.append(f"{label} #{r.index} {rank_metric} {r.score:.3f}")
    return viz.grid(rows, ["real", "masked", "inpainted"], row_titles=names, row_title_width=150)


def from_result(result, checkpoint: str = "", missing: dict[str, str] | None = None) -> dict:
    """The report of an `EvalResult` (runner): metrics, the protocol (set, masks, seed, checkpoint), skipped records,
    timing."""
    protocol = {**result.identity, **({"checkpoint": checkpoint} if checkpoint else {})}
    n = result.identity["num_images"]
    return as_json(
        result.scores,
        n,
        missing,
        protocol=protocol,
        skipped=result.skipped,
        ranked_by=result.rank_metric,
        seconds=round(result.seconds, 3),
        images_per_s=round(n / result.seconds, 3) if result.seconds > 0 else None,
        cached_real_features=result.cached_real_features,
    )


def companion_paths(json_path: str | os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
    """(report.md, best/worst PNG) written next to a JSON report."""
    p = pathlib.Path(json_path)
    return p.with_suffix(".md"), p.with_name(p.stem + "_best_worst.png")


def write_json(path: str | os.PathLike, rep: dict) -> None:
    """Write the report atomically, creating its folder."""
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as f:
        f.write((json.dumps(rep, indent=2) + "\n").encode())
