"""`mat-jax compare` (mat_jax/study/compare.py) on three tiny finished runs of a sweep (two seeds of one variant, one
of another): the table's numbers against the runs' own metrics.jsonl and reports (mean ± std computed here), plots
and the sample strip as PNGs of the stated size, mismatched evaluation protocols refused."""

from __future__ import annotations

import json
import pathlib
import shutil
import statistics

import numpy as np
import pytest
from PIL import Image
from train_helpers import MICRO_OVERRIDES, TINY

from mat_jax import cli
from mat_jax.study import compare, runs, sweep
from mat_jax.train import loop


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """runs a__seed0, a__seed1 (official tiny) and b__seed0 (no SMM): 2 iterations each, evaluated at 1 and 2."""
    root = tmp_path_factory.mktemp("study")
    spec = root / "spec.py"
    overrides = [*MICRO_OVERRIDES, "train.total_steps=2", "eval.every_kimg=0.008", "eval.num_images=4"]
    spec.write_text(
        f"def get_sweep():\n    return dict(base={str(TINY)!r}, variants={{'a': [], 'b': "
        f"['model.style_manipulation=False']}}, seeds=[0, 1], overrides={overrides!r})\n"
    )
    points = sweep.expand(spec, root / "sweep")[:3]
    configs = sweep.check(points)
    sweep.prepare(points, configs, root / "sweep")
    sweep.run_local(points, configs, lambda p: 0 if loop.train(sweep.resolve(p), p.workdir)["step"] == 2 else 1)
    return root / "sweep", points


def _final_eval(workdir) -> dict:
    rows = [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/psnr" in r]
    assert [r["step"] for r in evals] == [1, 2]
    return {k[len("eval/") :]: v for k, v in evals[-1].items() if k in ("eval/psnr", "eval/ssim", "eval/l1")}


def test_table_has_the_runs_numbers(study, tmp_path, capsys):
    sweep_dir, points = study
    out = tmp_path / "report"
    assert cli.main(["compare", str(sweep_dir), "--out", str(out), "--samples", "3"]) == 0
    assert "report:" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline"] == "a" and summary["metrics"] == ["psnr", "ssim", "l1"]
    a, b = summary["variants"]
    assert (a["name"], a["runs"], a["seeds"]) == ("a", ["a__seed0", "a__seed1"], [0, 1])
    assert (b["name"], b["runs"], b["differs"]) == ("b", ["b__seed0"], {"model.style_manipulation": False})
    finals = [_final_eval(p.workdir) for p in points]
    md = (out / "report.md").read_text()
    for m in ("psnr", "ssim", "l1"):
        mean, std = statistics.mean([finals[0][m], finals[1][m]]), statistics.stdev([finals[0][m], finals[1][m]])
        assert a["metrics"][m]["mean"] == pytest.approx(mean, rel=1e-12)
        assert a["metrics"][m]["std"] == pytest.approx(std, rel=1e-9)
        assert b["metrics"][m] == pytest.approx(
            {"mean": finals[2][m], "std": None, "n": 1, "delta": finals[2][m] - mean}
        )
        assert f"{mean:.4f} ± {std:.4f}" in md and f"{finals[2][m] - mean:+.4f}" in md
    key = "perf/step_time_s"  # per logged interval; the first one holds the compile
    times = [[r[key] for r in runs.read_run(p.workdir).metrics if key in r][1:] for p in points[:2]]
    assert a["step_time_s"] == pytest.approx(np.mean([np.median(t) for t in times]))
    rss = [
        r["perf/peak_memory_rss_gb"]
        for p in points[:2]
        for r in runs.read_run(p.workdir).metrics
        if "perf/peak_memory_rss_gb" in r
    ]
    assert rss and a["peak_memory"] == max(rss) and f"| {max(rss):.3g} |" in md  # CPU: the processes' peak RSS
    assert b["params"] < a["params"]  # no SMM: no to_square / stage-2 mixing weights
    row_b = next(line for line in md.splitlines() if line.startswith("| b |"))
    assert "`model.style_manipulation=False`" in row_b
    for name in ("eval_psnr.png", "eval_ssim.png", "eval_l1.png", "train_G_total.png", "train_D_total.png"):
        with Image.open(out / name) as im:
            assert im.size == compare.PLOT_SIZE and len(set(im.getdata())) > 3, name  # drawn, not blank
        assert f"({name})" in md
    with Image.open(out / "samples.png") as im:
        strip = np.asarray(im)
    assert strip.shape[0] > 4 * 96 and strip.shape[1] > 3 * 96  # 4 rows (input, a, b, real) x 3 records
    assert strip.std() > 10


def test_runs_under_different_protocols_are_refused(study, tmp_path):
    sweep_dir, points = study
    other = tmp_path / "c__seed0"
    shutil.copytree(points[2].workdir, other, ignore=shutil.ignore_patterns("checkpoints"))
    final = sorted((other / "eval").glob("report_*[0-9].json"))[-1]
    rep = json.loads(final.read_text())
    rep["protocol"]["seed"] = 5
    rep["protocol"]["num_images"] = 3
    final.write_text(json.dumps(rep))
    with pytest.raises(ValueError, match=r"different protocols.*num_images: .*c__seed0=3.*; seed: .*c__seed0=5"):
        compare.compare([points[0].workdir, other], tmp_path / "out", samples=0)
    assert cli.main(["compare", points[0].workdir, str(other), "--out", str(tmp_path / "out")]) == 1
    with pytest.raises(ValueError, match=r"--baseline 'zzz' is not a variant"):
        compare.compare([sweep_dir], tmp_path / "out2", baseline="zzz", samples=0)
