"""A training run as a checkpoint source: find its latest complete step and restore single nets from it.

A run is what `mat-jax train --workdir DIR` leaves:

    DIR/
      model_config.json        the resolved MATConfig of the run (config.json's `model` section for older runs)
      config.json              the whole training config
      checkpoints/<step>/      orbax: state/ (G, D, G_ema, Adam states, ...), meta/, data_iter/

Any of DIR, DIR/checkpoints or DIR/checkpoints/<step> names the run. A step directory is *complete* when orbax
finalised it: the name is an integer (orbax writes into `<step>.orbax-checkpoint-tmp-*` and renames at the end)
and its state and metadata files are present, so a copy or a write that was cut short is skipped.

Only the nets asked for are read (a partial orbax restore onto host numpy arrays): no Adam states, no mesh, any
device count.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
from typing import Mapping

import numpy as np

from mat_jax.convert.errors import ConversionError
from mat_jax.models.config import MATConfig

DEMO_WORKDIR = pathlib.Path("runs/demo")  # --workdir of the demo job (README's first command, configs/demo.py)
MODEL_CONFIG_FILE = "model_config.json"
TRAIN_CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"
STATE_KEYS = {"G": "g", "G_ema": "ema", "D": "d"}  # net name -> key in the train state (steps.init_state)
NETS = tuple(STATE_KEYS)
_COMPLETE_MARKERS = ("_CHECKPOINT_METADATA", os.path.join("state", "_METADATA"), os.path.join("meta", "metadata"))


class RunCheckpointError(ConversionError):
    """A training run that cannot serve the request (no complete step, unknown step, missing config)."""


@dataclasses.dataclass(frozen=True)
class RunStep:
    """One complete checkpoint of a run."""

    workdir: pathlib.Path
    step: int
    path: pathlib.Path  # .../checkpoints/<step>

    def describe(self, net: str | None = None) -> str:
        return f"{self.workdir} step {self.step}" + (f" ({net})" if net else "")


def _workdir_of(path: pathlib.Path) -> tuple[pathlib.Path, int | None] | None:
    """(workdir, step named by the path or None) when `path` is a run, its checkpoints/ folder or a step."""
    if (path / CHECKPOINTS).is_dir():
        return path, None
    if path.name == CHECKPOINTS and path.is_dir() and _has_config(path.parent):
        return path.parent, None
    if path.name.isdigit() and path.parent.name == CHECKPOINTS and _has_config(path.parent.parent):
        return path.parent.parent, int(path.name)
    return None


def _has_config(workdir: pathlib.Path) -> bool:
    return (workdir / MODEL_CONFIG_FILE).is_file() or (workdir / TRAIN_CONFIG_FILE).is_file()


def is_run(path: str | os.PathLike) -> bool:
    """True for a training workdir, its checkpoints/ folder or one of its step directories."""
    return _workdir_of(pathlib.Path(path)) is not None


def is_complete(step_dir: pathlib.Path) -> bool:
    return step_dir.name.isdigit() and all((step_dir / m).is_file() for m in _COMPLETE_MARKERS)


def complete_steps(workdir: str | os.PathLike) -> list[int]:
    """Sorted steps of the run's finalised checkpoints."""
    ckpts = pathlib.Path(workdir) / CHECKPOINTS
    if not ckpts.is_dir():
        return []
    return sorted(int(p.name) for p in ckpts.iterdir() if p.is_dir() and is_complete(p))


def locate(path: str | os.PathLike, step: int | None = None) -> RunStep:
    """The checkpoint `path` names: its own step for a step directory, else `step`, else the latest complete."""
    path = pathlib.Path(path).absolute()
    found = _workdir_of(path)
    if found is None:
        raise RunCheckpointError(
            f"{path}: not a mat-jax training run (no {CHECKPOINTS}/ folder beside a "
            f"{MODEL_CONFIG_FILE} or {TRAIN_CONFIG_FILE})"
        )
    workdir, named = found
    if named is not None and step is not None and step != named:
        raise RunCheckpointError(f"{path} is step {named}, but step {step} was requested")
    steps = complete_steps(workdir)
    want = named if named is not None else step
    if want is None:
        if not steps:
            raise RunCheckpointError(
                f"{workdir}: has no complete checkpoint in {workdir / CHECKPOINTS} (the run "
                "saved none yet, or every save was interrupted)"
            )
        want = steps[-1]
    elif want not in steps:
        state = "is incomplete (interrupted save)" if (workdir / CHECKPOINTS / str(want)).is_dir() else "does not exist"
        have = ", ".join(map(str, steps)) or "none"
        raise RunCheckpointError(f"{workdir}: checkpoint step {want} {state}; complete steps: {have}")
    return RunStep(workdir, want, workdir / CHECKPOINTS / str(want))


def training_config(path: str | os.PathLike) -> dict | None:
    """The run's config.json as a dict (path: a workdir, its checkpoints/ or a step), or None when it has none."""
    found = _workdir_of(pathlib.Path(path))
    f = found[0] / TRAIN_CONFIG_FILE if found else None
    if f is None or not f.is_file():
        return None
    try:
        config = json.loads(f.read_text())
    except ValueError as e:
        raise RunCheckpointError(f"{f}: not readable JSON ({e})") from None
    if not isinstance(config, dict):
        raise RunCheckpointError(f"{f}: expected a JSON object, found {type(config).__name__}")
    return config


def model_config(workdir: str | os.PathLike) -> MATConfig:
    """The run's architecture: model_config.json (written by the loop), else config.json's `model` section."""
    workdir = pathlib.Path(workdir)
    for name, pick in ((MODEL_CONFIG_FILE, lambda d: d), (TRAIN_CONFIG_FILE, lambda d: d.get("model"))):
        f = workdir / name
        if not f.is_file():
            continue
        try:
            section = pick(json.loads(f.read_text()))
            if not isinstance(section, Mapping):
                raise ValueError("no 'model' section")
            return MATConfig.from_dict(section)
        except (ValueError, TypeError) as e:
            raise RunCheckpointError(f"{f}: cannot read the model config ({e})") from None
    raise RunCheckpointError(f"{workdir}: has neither {MODEL_CONFIG_FILE} nor {TRAIN_CONFIG_FILE}")


def write_model_config(workdir: str | os.PathLike, cfg: MATConfig) -> pathlib.Path:
    """Store the resolved architecture of a run (atomically) so that every checkpoint reader finds it."""
    path = pathlib.Path(workdir) / MODEL_CONFIG_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(cfg.to_dict(), indent=1) + "\n")
    os.replace(tmp, path)
    return path


def restore_nets(run: RunStep, nets: tuple[str, ...]) -> dict[str, dict]:
    """{net: Flax variables as numpy trees} of `nets` ('G', 'G_ema', 'D') from one checkpoint."""
    import jax
    import orbax.checkpoint as ocp

    bad = [n for n in nets if n not in STATE_KEYS]
    if bad:
        raise RunCheckpointError(f"unknown net(s) {bad}; a training run holds {', '.join(NETS)}")
    state_dir = run.path / "state"
    ckptr = ocp.PyTreeCheckpointer()
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.ERROR)  # orbax warns that a sub-item has no step metadata: true and harmless here
    try:
        tree = ckptr.metadata(state_dir).item_metadata.tree
        wanted = {STATE_KEYS[n]: tree[STATE_KEYS[n]] for n in nets}
        item = jax.tree.map(lambda _: np.zeros((), np.float32), wanted)
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), wanted)
        out = ckptr.restore(
            state_dir, args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args, partial_restore=True)
        )
    except (OSError, KeyError, ValueError) as e:
        raise RunCheckpointError(f"{state_dir}: cannot restore {', '.join(nets)} ({type(e).__name__}: {e})") from None
    finally:
        absl_log.setLevel(level)
    return {n: out[STATE_KEYS[n]] for n in nets}
