"""Sweeps: a spec file's base config x variants (or a grid) x seeds -> one run directory per point, and the commands
that train them (locally one after another, as one SLURM array, or one TPU-pod job per point).

A spec is a Python file (like `configs/*.py`) whose `get_sweep()` returns a dict:

    base: str                      # the base config file
    variants: {name: str | [str]}  # optional: a config file, or KEY=VALUE overrides of the base
    grid: {KEY: [values]}          # optional: every combination (crossed with the variants when both are given)
    seeds: [int]                   # the seed axis (config field `seed`); default [0]
    overrides: [str]               # optional: KEY=VALUE applied to every point (e.g. the run length)

Relative paths in a spec are relative to the spec file's folder. Point `<variant>__seed<k>` trains in
`OUT/<variant>__seed<k>/` with overrides (the spec's, the variant's, the grid's, the command line's, then `seed=k`)
applied in that order, so a variant's value wins over the spec-wide one;
`OUT/points.txt` holds one line per point, `CONFIG WORKDIR --config.KEY=VALUE ...` (shell-quoted), which is what
`launch/slurm.sbatch --points` reads for its array index, and `OUT/sweep.json` the expansion.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pathlib
import re
import shlex
from typing import Any, Callable

from mat_jax.config import ConfigError, as_plain, call_file_function, differences, load_config, override_of
from mat_jax.train import loop, run_dir

__all__ = [
    "SweepError",
    "Point",
    "load_spec",
    "expand",
    "resolve",
    "check",
    "prepare",
    "progress",
    "commands",
    "train_argv",
    "run_local",
]

SPEC_KEYS = ("base", "variants", "grid", "seeds", "overrides")
LAUNCHERS = ("local", "slurm", "tpu", "gke")
POINT_FILE = "point.json"  # in every point's workdir: name, variant, seed, config file, overrides
EXTENDABLE = ("train.total_steps", "train.total_kimg")  # a run may be resumed with a longer (or shorter) length
_NAME = re.compile(r"^[A-Za-z0-9_.+=-]+$")


class SweepError(RuntimeError):
    """A point's training run failed (`mat-jax sweep` exits 1; re-running the sweep resumes it)."""

    exit_code = 1


@dataclasses.dataclass(frozen=True)
class Point:
    """One run of a sweep."""

    name: str  # "<variant>__seed<k>", also the run directory's name
    variant: str
    seed: int
    config_path: str  # the config file the run loads
    overrides: tuple[str, ...]  # KEY=VALUE, in the order they apply
    workdir: str

    def train_args(self) -> list[str]:
        """CONFIG WORKDIR --config.KEY=VALUE ...: the arguments of every launcher in launch/."""
        return [self.config_path, self.workdir, *(f"--config.{o}" for o in self.overrides)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"overrides": list(self.overrides)}


def load_spec(path: str | os.PathLike) -> dict:
    """The checked dict of a spec file's `get_sweep()`; ConfigError naming the file and key at fault."""
    path = pathlib.Path(path)
    spec = dict(call_file_function(path, "get_sweep", "sweep spec"))
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown sweep key(s) {unknown}; known: {list(SPEC_KEYS)}")
    if not spec.get("base"):
        raise ConfigError(f"{path}: get_sweep() must give 'base', the base config file")
    for key, kind in (("variants", dict), ("grid", dict), ("seeds", (list, tuple)), ("overrides", (list, tuple))):
        if key in spec and not isinstance(spec[key], kind):
            raise ConfigError(f"{path}: sweep key {key!r} must be a {kind}, got {type(spec[key]).__name__}")
    for key, values in spec.get("grid", {}).items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"{path}: grid[{key!r}] must be a non-empty list of values")
    seeds = spec.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: 'seeds' must be distinct integers >= 0, got {seeds!r}")
    return spec


def _file(spec_path: pathlib.Path, value: str) -> str:
    """A spec's path, relative to the spec's folder, as the current directory sees it (relative when inside it)."""
    p = pathlib.Path(value)
    p = p if p.is_absolute() else spec_path.parent / p
    rel = os.path.relpath(p)
    return p.as_posix() if rel.startswith("..") else rel


def _slug(value: Any) -> str:
    text = "-".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def _variants(spec: dict, spec_path: pathlib.Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, config file, overrides) of every variant x grid combination."""
    base = _file(spec_path, spec["base"])
    variants = []
    for name, v in (spec.get("variants") or {"baseline": []}).items():
        if not _NAME.match(str(name)) or "__" in str(name):
            raise ConfigError(f"{spec_path}: variant name {name!r} must be letters, digits, _ . + = - (no '__')")
        if isinstance(v, str):
            variants.append((str(name), _file(spec_path, v), ()))
        elif isinstance(v, (list, tuple)) and all(isinstance(o, str) and "=" in o for o in v):
            variants.append((str(name), base, tuple(v)))
        else:
            raise ConfigError(f"{spec_path}: variant {name!r} must be a config file or a list of KEY=VALUE, got {v!r}")
    grid = spec.get("grid") or {}
    combos = list(itertools.product(*grid.values())) if grid else [()]
    out = []
    for (name, path, overrides), combo in itertools.product(variants, combos):
        items = list(zip(grid, combo, strict=True))
        suffix = "_".join(f"{k.rsplit('.', 1)[-1]}-{_slug(v)}" for k, v in items)
        full = suffix if suffix and not spec.get("variants") else "_".join(x for x in (name, suffix) if x)
        out.append((full, path, (*overrides, *(override_of(k, v) for k, v in items))))
    names = [n for n, _, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{spec_path}: the expansion gives duplicate point names {dup}")
    return out


def expand(spec_path: str | os.PathLike, out: str | os.PathLike, extra_overrides=()) -> list[Point]:
    """The points of a spec under `out`, variants outer, seeds inner."""
    spec_path = pathlib.Path(spec_path)
    spec = load_spec(spec_path)
    common = tuple(spec.get("overrides", ()))
    return [
        Point(
            name=f"{name}__seed{seed}",
            variant=name,
            seed=int(seed),
            config_path=path,
            overrides=(*common, *overrides, *extra_overrides, f"seed={int(seed)}"),
            workdir=(pathlib.Path(out) / f"{name}__seed{seed}").as_posix(),
        )
        for name, path, overrides in _variants(spec, spec_path)
        for seed in spec.get("seeds", [0])
    ]


def resolve(point: Point):
    """The point's training config; ConfigError naming the point."""
    try:
        return load_config(point.config_path, point.overrides)
    except (ConfigError, FileNotFoundError) as e:
        raise ConfigError(f"sweep point {point.name}: {e}") from None


def check(points: list[Point]) -> list:
    """Every point's resolved config, each checked as `train` checks it before compiling (`loop.check_config`);
    the first failure raises, naming the point, its overrides and the fields."""
    configs = []
    for p in points:
        config = resolve(p)
        try:
            loop.check_config(config)
        except ValueError as e:
            raise ConfigError(f"sweep point {p.name} ({p.config_path} {' '.join(p.overrides)}): {e}") from None
        configs.append(config)
    return configs


def prepare(points: list[Point], configs: list, out: str | os.PathLike) -> pathlib.Path:
    """Write OUT/points.txt, OUT/sweep.json and each point's point.json + config.json; refuse a point whose
    existing run was made with a different config, other than its length (naming the keys). Returns points.txt."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for p, config in zip(points, configs, strict=True):
        wd = pathlib.Path(p.workdir)
        plain = as_plain(config)
        old = wd / "config.json"
        if old.is_file():
            diff = differences(plain, json.loads(old.read_text()), ignore=EXTENDABLE)
            if diff:
                shown = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:6])
                raise ConfigError(
                    f"sweep point {p.name}: {old} was trained with a different config ({shown}); "
                    "use another --out, or remove that run to restart it"
                )
        wd.mkdir(parents=True, exist_ok=True)
        (wd / POINT_FILE).write_text(json.dumps(p.to_dict(), indent=2) + "\n")
        old.write_text(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
    lines = [shlex.join(p.train_args()) for p in points]
    (out / "points.txt").write_text("\n".join(lines) + "\n")
    (out / "sweep.json").write_text(json.dumps({"points": [p.to_dict() for p in points]}, indent=2) + "\n")
    return out / "points.txt"


def progress(point: Point, config) -> tuple[str, int]:
    """("finished" | "resume" | "start", latest complete checkpoint step) of a point's run directory."""
    steps = run_dir.complete_steps(point.workdir)
    latest = steps[-1] if steps else 0
    if latest >= loop.total_steps(config):
        return "finished", latest
    return ("resume" if steps else "start"), latest


def commands(points: list[Point], launcher: str, out: str | os.PathLike, todo: list[int], python="python") -> list[str]:
    """The shell commands that train the points with indices `todo` (the unfinished ones) with `launcher`."""
    if launcher == "local":
        return [shlex.join([python, "-m", "mat_jax.train", *_train_flags(points[i])]) for i in todo]
    if launcher == "slurm":
        if not todo:
            return []
        array = f"0-{len(points) - 1}" if todo == list(range(len(points))) else ",".join(map(str, todo))
        points_txt = shlex.quote((pathlib.Path(out) / "points.txt").as_posix())
        return [f"sbatch --array={array} launch/slurm.sbatch --points {points_txt}"]
    if launcher == "tpu":
        return [f"TPU_NAME=$TPU_NAME ZONE=$ZONE launch/tpu_pod.sh {shlex.join(points[i].train_args())}" for i in todo]
    if launcher == "gke":  # one JobSet per point (launch/gke/), named after the point; KIND gpu|tpu from $GKE_KIND
        return [
            f"JOB_NAME={_k8s_name(points[i].name)} IMAGE=$IMAGE BUCKET=$BUCKET launch/gke/submit.sh "
            f"${{GKE_KIND:-gpu}} {shlex.join(points[i].train_args())}"
            for i in todo
        ]
    raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")


def _k8s_name(name: str) -> str:
    """A Kubernetes object name for a point (lowercase alphanumerics and '-', at most 40 characters + a hash)."""
    import hashlib

    clean = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    if len(clean) <= 48:
        return f"mat-jax-{clean}"
    return f"mat-jax-{clean[:40].rstrip('-')}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def _train_flags(p: Point) -> list[str]:
    return ["--config", p.config_path, "--workdir", p.workdir, *(f"--config.{o}" for o in p.overrides)]


def train_argv(point: Point, python: str) -> list[str]:
    """argv of `python -m mat_jax.train` for one point (what the local launcher runs)."""
    return [python, "-m", "mat_jax.train", *_train_flags(point)]


def run_local(points: list[Point], configs: list, run_point: Callable[[Point], int], say=print) -> dict[str, str]:
    """Train the points one after another with `run_point(point) -> exit status`: a finished run is skipped, an
    interrupted one resumes (the loop resumes from its workdir). The first failing point stops the sweep."""
    done = {}
    for p, config in zip(points, configs, strict=True):
        state, step = progress(p, config)
        if state == "finished":
            say(f"{p.name}: finished (step {step}), skipped")
            done[p.name] = "skipped"
            continue
        say(f"{p.name}: {'resuming from step ' + str(step) if state == 'resume' else 'starting'}")
        code = run_point(p)
        if code:
            raise SweepError(f"sweep point {p.name} failed (exit status {code}); re-running the sweep resumes it")
        done[p.name] = state
    return done
