"""`mat-jax compare`: runs (or a sweep directory) -> `report.md` (one row per variant: what differs from the baseline,
parameters, step time, peak memory, final metrics as mean ± std over seeds and Δ vs the baseline), `summary.json`
(the same numbers unrounded), metric-vs-kimg plots and a sample strip of every variant on the same inputs.

Runs group by variant (the sweep point's `variant`, else the directory name without `__seed<k>`); the std is the
sample standard deviation (ddof 1) over a variant's seeds, absent with one seed. Runs whose final evaluation reports
were made under different protocols (set, masks, seed, number of images) are refused.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from mat_jax import viz
from mat_jax.config import differences, flatten
from mat_jax.eval.report import MEANING, METRICS
from mat_jax.study import runs as runs_mod
from mat_jax.study.runs import Run

__all__ = ["summarize", "table", "markdown", "metric_plots", "compare"]

LOSSES = ("G/total", "D/total")  # training curves drawn next to the evaluation metrics
PLOT_SIZE = (640, 400)  # (width, height) of every plot


def _groups(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.variant, []).append(r)
    return out


def _stats(values: list[float]) -> dict:
    a = np.asarray(values, np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else None, "n": int(a.size)}


def param_count(run: Run) -> int:
    """Generator parameters of a run's architecture (model_config.json, counted with jax.eval_shape)."""
    from mat_jax.train import run_dir
    from mat_jax.weights.layout import abstract_variables

    shapes = abstract_variables(run_dir.model_config(run.path), "G")["params"]
    import jax

    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(shapes)))


def summarize(runs: list[Run], baseline: str | None = None) -> dict:
    """The comparison as data: {"baseline", "protocol", "metrics", "variants": [{name, runs, seeds, differs,
    params, step_time_s, peak_memory, metrics: {m: {mean, std, n, delta}}}]}. ValueError for mismatched protocols
    or an unknown baseline."""
    proto = runs_mod.check_protocols(runs)
    groups = _groups(runs)
    if baseline is None:
        baseline = "baseline" if "baseline" in groups else next(iter(groups))
    if baseline not in groups:
        raise ValueError(f"--baseline {baseline!r} is not a variant of these runs: {sorted(groups)}")
    metrics = [m for m in METRICS if any(r.final_report and r.final_report.get(m) is not None for r in runs)]
    base_cfg = groups[baseline][0].config
    variants = []
    for name, members in groups.items():
        stats = {}
        for m in metrics:
            values = [r.final_report[m] for r in members if r.final_report and r.final_report.get(m) is not None]
            if values:
                stats[m] = _stats(values)
        # keys only one config has (written by another version of mat-jax) are not differences of the runs
        one_sided = tuple(set(flatten(members[0].config)) ^ set(flatten(base_cfg)))
        diff = differences(members[0].config, base_cfg, ignore=("seed", *one_sided))
        times = [t for t in map(runs_mod.step_time, members) if t is not None]
        mems = [v for v in map(runs_mod.peak_memory, members) if v is not None]
        variants.append(
            {
                "name": name,
                "runs": [r.name for r in members],
                "seeds": [r.seed for r in members],
                "differs": {k: v for k, (_, v) in diff.items()},
                "params": param_count(members[0]),
                "step_time_s": float(np.mean(times)) if times else None,
                "peak_memory": max(mems) if mems else None,
                "final_step": [r.reports[-1][0] if r.reports else None for r in members],
                "metrics": stats,
            }
        )
    base = next(v for v in variants if v["name"] == baseline)
    for v in variants:
        for m, s in v["metrics"].items():
            s["delta"] = s["mean"] - base["metrics"][m]["mean"] if m in base["metrics"] else None
    return {"baseline": baseline, "protocol": proto, "metrics": metrics, "variants": variants}


def _value(s: dict | None) -> str:
    if s is None:
        return "n/a"
    return f"{s['mean']:.4f}" if s["std"] is None else f"{s['mean']:.4f} ± {s['std']:.4f}"


def _delta(s: dict | None) -> str:
    return "n/a" if s is None or s.get("delta") is None else f"{s['delta']:+.4f}"


def table(summary: dict) -> list[str]:
    """The Markdown rows of the comparison table."""
    ms = summary["metrics"]
    head = ["variant", "seeds", "differs from baseline", "G params", "step time (s)", "peak memory (GiB)"]
    head += [x for m in ms for x in (m, f"Δ {m}")]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (len(head) - 3)]
    for v in summary["variants"]:
        differs = (
            "(baseline)"
            if v["name"] == summary["baseline"]
            else ", ".join(f"`{k}={val!r}`" for k, val in v["differs"].items()) or "nothing"
        )
        cells = [
            v["name"],
            ",".join(map(str, v["seeds"])),
            differs,
            f"{v['params'] / 1e6:.3f} M",
            "n/a" if v["step_time_s"] is None else f"{v['step_time_s']:.3f}",
            "n/a" if v["peak_memory"] is None else f"{v['peak_memory']:.3g}",
        ]
        cells += [x for m in ms for x in (_value(v["metrics"].get(m)), _delta(v["metrics"].get(m)))]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _mean_curve(points: list[list[tuple[float, float]]]) -> tuple[list[float], list[float]]:
    """Mean over seeds at the x values every seed has."""
    common = sorted(set.intersection(*(set(x for x, _ in p) for p in points))) if points else []
    per = [dict(p) for p in points]
    return common, [float(np.mean([d[x] for d in per])) for x in common]


def metric_plots(runs: list[Run], out: pathlib.Path, metrics: list[str]) -> list[pathlib.Path]:
    """One PNG per evaluation metric (eval_<m>.png) and training loss (train_<G|D>_total.png): the variant's mean
    over seeds against kimg."""
    groups = _groups(runs)
    written = []
    for m in metrics:
        series = {
            name: _mean_curve(
                [[(runs_mod.kimg(r, s), rep[m]) for s, rep in r.reports if rep.get(m) is not None] for r in members]
            )
            for name, members in groups.items()
        }
        img = viz.line_plot(series, f"eval/{m}: {MEANING[m]}", "kimg", PLOT_SIZE)
        written.append(viz.save_png(out / f"eval_{m}.png", img))
    for loss in LOSSES:
        series = {
            name: _mean_curve(
                [
                    [
                        (row["progress/kimg"], row[loss])
                        for row in r.metrics
                        if isinstance(row.get(loss), (int, float)) and "progress/kimg" in row
                    ]
                    for r in members
                ]
            )
            for name, members in groups.items()
        }
        if any(xs for xs, _ in series.values()):
            img = viz.line_plot(series, f"training {loss} (mean of the logged interval)", "kimg", PLOT_SIZE)
            written.append(viz.save_png(out / f"train_{loss.replace('/', '_')}.png", img))
    return written


def markdown(summary: dict, plots: list[pathlib.Path], strip: pathlib.Path | None, note: str = "") -> str:
    lines = ["# Ablation comparison", ""]
    if summary["protocol"]:
        lines += ["Evaluated on: " + ", ".join(f"{k} `{v}`" for k, v in summary["protocol"].items()), ""]
    else:
        lines += ["No run has an evaluation report (set `eval.every_kimg` > 0): no metrics.", ""]
    lines += table(summary)
    lines += [
        "",
        f"Baseline: `{summary['baseline']}`. Metrics are each run's final evaluation report, mean ± sample std "
        "(ddof 1) over the variant's seeds (no std with one seed); Δ = variant mean − baseline mean. Step time: "
        "median `perf/step_time_s` of metrics.jsonl (wall time per iteration of a logged interval) without the first "
        "interval (compile), averaged over seeds; peak memory: the largest `perf/peak_memory*` logged, max over seeds "
        "(the device's peak on GPU/TPU, the process's peak RSS on CPU; n/a for runs that log none). G params from "
        "the run's model_config.json.",
        "",
    ]
    if note:
        lines += [note, ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    if strip is not None:
        lines += ["", f"![samples]({strip.name})"]
    return "\n".join(lines) + "\n"


def compare(paths: list[str | os.PathLike], out: str | os.PathLike, baseline: str | None = None, samples: int = 4):
    """Read the runs, write OUT/report.md, OUT/summary.json, the plots and (samples > 0) OUT/samples.png.
    Returns the summary."""
    out = pathlib.Path(out)
    runs = [runs_mod.read_run(p) for p in runs_mod.find_runs(paths)]
    summary = summarize(runs, baseline)
    out.mkdir(parents=True, exist_ok=True)
    plots = metric_plots(runs, out, summary["metrics"])
    strip, note = None, ""
    if samples > 0:
        from mat_jax.study.samples import eval_set_of, sample_strip

        groups = _groups(runs)
        base_run = groups[summary["baseline"]][0]
        named = {name: members[0] for name, members in groups.items()}
        strip = viz.save_png(out / "samples.png", sample_strip(named, eval_set_of(base_run), samples))
        note = (
            f"Samples: records 0..{samples - 1} of {base_run.name}'s evaluation set (same images, masks, latents and "
            "style maps for every variant), inpainted by each variant's first run's latest G_ema."
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.md").write_text(markdown(summary, plots, strip, note))
    return summary
