"""`mat-jax sweep` (mat_jax/study/sweep.py): spec -> points (variants / grid x seeds), resolved configs in run
directories, refused combinations before anything runs, resumption (finished skipped, interrupted resumed), and the
commands of every launcher, down to launch/slurm.sbatch picking its point by array index."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import subprocess
import textwrap

import pytest
from train_helpers import MICRO_OVERRIDES, REPO, TINY

from mat_jax import cli
from mat_jax.config import ConfigError
from mat_jax.study import sweep
from mat_jax.train import loop, run_dir


def _spec(tmp_path: pathlib.Path, body: str, name: str = "spec.py") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(f"def get_sweep():\n    return {textwrap.dedent(body).strip()}\n")
    return path


def _micro_spec(tmp_path, variants="{'a': []}", seeds="[0, 1]", extra="[]"):
    overrides = [*MICRO_OVERRIDES, "train.total_steps=2"]
    return _spec(
        tmp_path, f"dict(base={str(TINY)!r}, variants={variants}, seeds={seeds}, overrides={overrides!r} + {extra})"
    )


def test_variants_times_seeds_give_named_points_with_resolved_configs(tmp_path):
    (tmp_path / "other.py").write_text(
        "from mat_jax.config import load_config\n\n"
        f"def get_config():\n    c = load_config({str(TINY)!r})\n    c.model.block = 'prenorm_residual'\n    return c\n"
    )
    spec = _micro_spec(tmp_path, variants="{'a': [], 'win': ['model.attention=window'], 'pre': 'other.py'}")
    out = tmp_path / "study"
    points = sweep.expand(spec, out)
    assert [p.name for p in points] == ["a__seed0", "a__seed1", "win__seed0", "win__seed1", "pre__seed0", "pre__seed1"]
    assert [p.seed for p in points] == [0, 1] * 3
    assert points[2].overrides[-2:] == ("model.attention=window", "seed=0")  # after the spec's overrides
    assert points[4].config_path == (tmp_path / "other.py").as_posix()  # relative to the spec's folder (outside cwd)
    configs = sweep.check(points)
    sweep.prepare(points, configs, out)
    for p in points:
        saved = json.loads((out / p.name / "config.json").read_text())
        assert saved["seed"] == p.seed and saved["model"]["resolution"] == 32 and saved["train"]["total_steps"] == 2
        assert json.loads((out / p.name / sweep.POINT_FILE).read_text())["overrides"] == list(p.overrides)
    attention = {p.name: json.loads((out / p.name / "config.json").read_text())["model"] for p in points}
    assert attention["win__seed1"]["attention"] == "window" and attention["a__seed0"]["attention"] == "mca"
    assert attention["pre__seed0"]["block"] == "prenorm_residual" and attention["a__seed0"]["block"] == "adjusted"
    lines = (out / "points.txt").read_text().splitlines()
    assert [shlex.split(line) for line in lines] == [p.train_args() for p in points]
    assert [q["name"] for q in json.loads((out / "sweep.json").read_text())["points"]] == [p.name for p in points]


def test_grid_is_every_combination_times_the_seeds(tmp_path):
    spec = _spec(
        tmp_path,
        f"dict(base={str(TINY)!r}, grid={{'model.attention': ['mca', 'window'], 'loss.r1_gamma': [1.0, 10.0]}}, "
        "seeds=[3])",
    )
    points = sweep.expand(spec, tmp_path / "g")
    assert [p.name for p in points] == [
        "attention-mca_r1_gamma-1.0__seed3",
        "attention-mca_r1_gamma-10.0__seed3",
        "attention-window_r1_gamma-1.0__seed3",
        "attention-window_r1_gamma-10.0__seed3",
    ]
    configs = sweep.check(points)
    got = [(c.model.attention, c.loss.r1_gamma, c.seed) for c in configs]
    assert got == [("mca", 1.0, 3), ("mca", 10.0, 3), ("window", 1.0, 3), ("window", 10.0, 3)]


@pytest.mark.parametrize(
    "body, message",
    [
        ("dict(base='x.py', sweeps=[])", "unknown sweep key(s) ['sweeps']"),
        ("dict(variants={})", "must give 'base'"),
        ("dict(base='x.py', seeds=[0, 0])", "'seeds' must be distinct"),
        ("dict(base='x.py', grid={'model.attention': []})", "grid['model.attention'] must be a non-empty list"),
        ("dict(base='x.py', variants={'a b': []})", "variant name 'a b'"),
    ],
)
def test_bad_spec_is_refused_naming_the_key(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        sweep.expand(_spec(tmp_path, body), tmp_path / "o")


def test_impossible_point_fails_before_anything_runs_naming_point_and_fields(tmp_path):
    spec = _micro_spec(tmp_path, variants="{'ok': [], 'bad': ['model.stage1_token_res=32']}", seeds="[0]")
    points = sweep.expand(spec, tmp_path / "o")
    with pytest.raises(ConfigError, match=r"sweep point bad__seed0 .*stage1_token_res.*resolution \(32\)"):
        sweep.check(points)
    unknown = sweep.expand(_micro_spec(tmp_path, variants="{'x': ['model.attn=window']}", seeds="[0]"), tmp_path / "p")
    with pytest.raises(ConfigError, match=r"sweep point x__seed0: .*no config field 'model.attn'"):
        sweep.check(unknown)
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--dry-run"]) == 1  # a config value refused
    assert not (tmp_path / "o" / "points.txt").exists()


def test_a_run_made_with_another_config_is_refused(tmp_path):
    spec = _micro_spec(tmp_path, seeds="[0]")
    points = sweep.expand(spec, tmp_path / "o")
    sweep.prepare(points, sweep.check(points), tmp_path / "o")
    longer = sweep.expand(spec, tmp_path / "o", ["train.total_steps=5"])  # the run length may change
    sweep.prepare(longer, sweep.check(longer), tmp_path / "o")
    changed = sweep.expand(spec, tmp_path / "o", ["loss.r1_gamma=3.0"])
    with pytest.raises(ConfigError, match=r"a__seed0: .*different config \(loss.r1_gamma: 10.0 -> 3.0\)"):
        sweep.prepare(changed, sweep.check(changed), tmp_path / "o")


def test_finished_point_is_skipped_and_interrupted_one_resumes(tmp_path):
    out = tmp_path / "o"
    points = sweep.expand(_micro_spec(tmp_path), out)
    configs = sweep.check(points)
    sweep.prepare(points, configs, out)
    assert loop.train(configs[0], points[0].workdir)["step"] == 2  # finished
    interrupted = sweep.resolve(
        sweep.Point(**{**points[1].to_dict(), "overrides": (*points[1].overrides, "train.total_steps=1")})
    )
    assert loop.train(interrupted, points[1].workdir)["step"] == 1
    assert [sweep.progress(p, c) for p, c in zip(points, configs, strict=True)] == [("finished", 2), ("resume", 1)]

    calls = []

    def run_point(p):
        calls.append(p.name)
        return 0 if loop.train(sweep.resolve(p), p.workdir)["status"] == "completed" else 1

    said = []
    assert sweep.run_local(points, configs, run_point, said.append) == {"a__seed0": "skipped", "a__seed1": "resume"}
    assert calls == ["a__seed1"]
    assert said == ["a__seed0: finished (step 2), skipped", "a__seed1: resuming from step 1"]
    assert run_dir.complete_steps(points[1].workdir)[-1] == 2
    assert "resuming from checkpoint step 1" in (pathlib.Path(points[1].workdir) / "train.log").read_text()
    assert sweep.run_local(points, configs, run_point, said.append) == {"a__seed0": "skipped", "a__seed1": "skipped"}
    with pytest.raises(sweep.SweepError, match="a__seed0 failed \\(exit status 3\\)"):
        sweep.run_local(
            [sweep.Point(**{**points[0].to_dict(), "workdir": str(tmp_path / "new")})], configs[:1], lambda p: 3
        )


def test_dry_run_prints_each_launchers_commands(tmp_path, capsys):
    spec = _micro_spec(tmp_path, variants="{'a': [], 'b': ['model.attention=window']}", seeds="[0, 1]")
    out = tmp_path / "o"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    points = sweep.expand(spec, out)
    assert lines[:4] == [f"{p.name}: start" for p in points]
    cmds = [shlex.split(line) for line in lines[4:]]
    assert len(cmds) == 4 and all(c[1:3] == ["-m", "mat_jax.train"] for c in cmds)
    assert [c[3:] for c in cmds] == [sweep._train_flags(p) for p in points]
    assert not any(run_dir.complete_steps(p.workdir) for p in points)  # nothing ran

    assert cli.main(["sweep", str(spec), "--out", str(out), "--launcher", "slurm"]) == 0
    slurm = capsys.readouterr().out.splitlines()[-1]
    assert slurm == f"sbatch --array=0-3 launch/slurm.sbatch --points {out.as_posix()}/points.txt"
    (pathlib.Path(points[2].workdir) / "checkpoints" / "2").mkdir(parents=True)  # pretend b__seed0 finished
    for marker in run_dir._COMPLETE_MARKERS:
        (pathlib.Path(points[2].workdir) / "checkpoints" / "2" / marker).parent.mkdir(parents=True, exist_ok=True)
        (pathlib.Path(points[2].workdir) / "checkpoints" / "2" / marker).write_text("")
    assert cli.main(["sweep", str(spec), "--out", str(out), "--launcher", "slurm", "--dry-run"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "b__seed0: finished (step 2)" in printed and printed[-1].startswith("sbatch --array=0,1,3 ")

    assert cli.main(["sweep", str(spec), "--out", str(out), "--launcher", "tpu"]) == 0
    tpu = [line for line in capsys.readouterr().out.splitlines() if "tpu_pod.sh" in line]
    assert [shlex.split(line)[3:] for line in tpu] == [points[i].train_args() for i in (0, 1, 3)]
    assert cli.main(["sweep", str(spec), "--out", str(out), "--launcher", "gke"]) == 0
    gke = [shlex.split(line) for line in capsys.readouterr().out.splitlines() if "gke/submit.sh" in line]
    assert [g[5:] for g in gke] == [points[i].train_args() for i in (0, 1, 3)]
    names = [g[0] for g in gke]
    assert names == [f"JOB_NAME=mat-jax-{points[i].name.replace('_', '-')}" for i in (0, 1, 3)]
    assert all(g[3:5] == ["launch/gke/submit.sh", "${GKE_KIND:-gpu}"] for g in gke)


def test_slurm_array_task_runs_its_line_of_points_txt(tmp_path):
    spec = _micro_spec(tmp_path, variants="{'a': [], 'b': ['model.attention=window']}", seeds="[0]")
    out = tmp_path / "o"
    points = sweep.expand(spec, out)
    sweep.prepare(points, sweep.check(points), out)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    (fake / "srun").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": "1"}
    script = REPO / "launch" / "slurm.sbatch"
    done = subprocess.run(
        ["bash", str(script), "--points", str(out / "points.txt")], env=env, capture_output=True, text=True, check=True
    )
    args = done.stdout.splitlines()
    cfg, wd, *rest = points[1].train_args()
    assert args[args.index("--config") + 1] == cfg and args[args.index("--workdir") + 1] == wd
    assert args[-len(rest) :] == rest and "--distributed" in args
    env["SLURM_ARRAY_TASK_ID"] = "7"
    missing = subprocess.run(
        ["bash", str(script), "--points", str(out / "points.txt")], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "no point 7" in missing.stderr
