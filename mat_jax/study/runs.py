"""What `mat-jax compare` reads of a training run: its resolved config, metrics.jsonl, evaluation reports, and the
sweep point it belongs to (variant, seed). Numbers are taken from these files as the run wrote them."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re

import numpy as np

from mat_jax.study.sweep import POINT_FILE

__all__ = ["Run", "find_runs", "read_run", "protocol", "check_protocols", "step_time", "peak_memory", "kimg"]

_REPORT = re.compile(r"^report_(\d{8})\.json$")
_SEED_SUFFIX = re.compile(r"__seed\d+$")


@dataclasses.dataclass
class Run:
    path: pathlib.Path
    variant: str
    seed: int
    config: dict  # config.json
    metrics: list[dict]  # metrics.jsonl rows, in order
    reports: list[tuple[int, dict]]  # (step, eval/report_<step>.json), by step

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def final_report(self) -> dict | None:
        return self.reports[-1][1] if self.reports else None


def _is_run(path: pathlib.Path) -> bool:
    return (path / "config.json").is_file()


def find_runs(paths: list[str | os.PathLike]) -> list[pathlib.Path]:
    """Run directories: each path is a run (holds config.json) or a sweep directory (its point directories, in the
    sweep's order when it has sweep.json); a path that is neither is a FileNotFoundError naming it."""
    out: list[pathlib.Path] = []
    for raw in paths:
        p = pathlib.Path(raw)
        if _is_run(p):
            out.append(p)
            continue
        sweep = p / "sweep.json"
        if sweep.is_file():
            names = [pathlib.Path(q["workdir"]).name for q in json.loads(sweep.read_text())["points"]]
            runs = [p / n for n in names if _is_run(p / n)]
        else:
            runs = sorted(q for q in p.iterdir() if q.is_dir() and _is_run(q)) if p.is_dir() else []
        if not runs:
            raise FileNotFoundError(f"{p}: neither a run directory (config.json) nor a sweep directory holding runs")
        out.extend(runs)
    return out


def _jsonl(path: pathlib.Path) -> list[dict]:
    rows = []
    if not path.is_file():
        return rows
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # a run killed mid-write leaves a partial last line
                break
            raise ValueError(f"{path}:{i + 1}: not JSON ({e})") from None
    return rows


def read_run(path: str | os.PathLike) -> Run:
    path = pathlib.Path(path)
    config = json.loads((path / "config.json").read_text())
    point = path / POINT_FILE
    if point.is_file():
        info = json.loads(point.read_text())
        variant, seed = info["variant"], int(info["seed"])
    else:
        variant, seed = _SEED_SUFFIX.sub("", path.name), int(config.get("seed", 0))
    reports = []
    if (path / "eval").is_dir():
        for f in sorted((path / "eval").iterdir()):
            m = _REPORT.match(f.name)
            if m:
                reports.append((int(m.group(1)), json.loads(f.read_text())))
    return Run(path, variant, seed, config, _jsonl(path / "metrics.jsonl"), reports)


def protocol(rep: dict) -> dict:
    """What an evaluation report measured on (set, masks, seed, size), without the checkpoint it evaluated."""
    return {k: v for k, v in (rep.get("protocol") or {}).items() if k != "checkpoint"}


def check_protocols(runs: list[Run]) -> dict | None:
    """The common evaluation protocol of the runs' final reports (None when no run has one); ValueError saying
    which fields differ between which runs."""
    with_reports = [r for r in runs if r.final_report is not None]
    if not with_reports:
        return None
    protos = {r.name: protocol(r.final_report) for r in with_reports}
    first = protos[with_reports[0].name]
    fields = sorted({k for p in protos.values() for k in p})
    differ = [k for k in fields if any(p.get(k) != first.get(k) for p in protos.values())]
    if differ:
        detail = "; ".join(f"{k}: " + ", ".join(f"{n}={p.get(k)!r}" for n, p in protos.items()) for k in differ)
        raise ValueError(
            f"the runs were evaluated under different protocols, so their numbers do not go in one table: {detail}. "
            "Give every run the same eval.data_path / eval.masks / eval.seed / eval.num_images (and data.hole_range "
            "for generated masks), or compare them separately"
        )
    return first


def step_time(run: Run) -> float | None:
    """Median seconds per iteration: `perf/step_time_s` of metrics.jsonl (wall time of a logged interval over its
    iterations; the loop never waits on the device between log steps, so this is the device's pace), leaving out the
    first logged interval, which holds the compile (unless it is the only one). The median leaves out the intervals
    that also held a sample grid, a checkpoint or an evaluation."""
    key = "perf/step_time_s"
    values = [r[key] for r in run.metrics if isinstance(r.get(key), (int, float))]
    values = values[1:] if len(values) > 1 else values
    return float(np.median(values)) if values else None


def peak_memory(run: Run) -> float | None:
    """The largest `perf/peak_memory*` value logged (GiB; the device's peak on GPU/TPU, the process's peak RSS on
    CPU: train/logs.peak_memory), or None for runs that logged none."""
    values = [v for r in run.metrics for k, v in r.items() if k.startswith("perf/peak_memory")]
    return float(max(values)) if values else None


def kimg(run: Run, step: int) -> float:
    return step * int(run.config["train"]["global_batch_size"]) / 1000
