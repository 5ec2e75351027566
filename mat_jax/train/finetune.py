"""Start a fresh training run from released or earlier weights (the official `--resume network.pkl`).

    mat-jax train --config configs/finetune512.py --workdir runs/ft --config.init.checkpoint=Places_512_FullData.pkl

`config.init` (defaults in configs/places512.py):
  checkpoint  any source `nets_io.load_nets` reads: an official `.pkl` (G, D, G_ema), a `.pt`/safetensors/npz,
              a mat-jax directory, another run (its workdir, checkpoints/ or a step directory)
  nets        which nets to load; the rest keep the seed's initialisation. When G is loaded and G_ema is not,
              G_ema starts as a copy of the loaded G (as every fresh run starts G_ema = G). Buffers come with
              their net (G's `w_avg`, `noise_const`).
  step        the step of a run source (None: its latest complete step)

Only a fresh run is initialised this way: the Adam states start fresh, and a run that resumes from its own
checkpoint never re-initialises (the loop logs that `init.checkpoint` is ignored). The weights must fit the
config's architecture: one error names every missing, unexpected or mis-shaped key.
"""

from __future__ import annotations

import jax
import numpy as np

from mat_jax.convert.errors import ConversionError
from mat_jax.models.config import MATConfig
from mat_jax.train import nets_io
from mat_jax.train.run_dir import STATE_KEYS  # net -> train-state key (steps.init_state)


def requested_nets(init_cfg) -> tuple[str, ...]:
    nets = tuple(init_cfg.nets)
    bad = [n for n in nets if n not in STATE_KEYS]
    if bad or not nets:
        raise ValueError(f"init.nets={nets!r}: choose among {tuple(STATE_KEYS)} (at least one)")
    return nets


def load(init_cfg, model: MATConfig) -> nets_io.LoadedNets:
    """Read and check the init weights against `model` (before anything is compiled)."""
    step = init_cfg.get("step")
    try:
        return nets_io.load_nets(init_cfg.checkpoint, requested_nets(init_cfg), step=step, cfg=model)
    except ValueError as e:  # CheckpointError (ConversionError): say which config field led here
        raise ConversionError(f"init.checkpoint={init_cfg.checkpoint!r}: {e}") from None


def _put(host_tree, shardings, where: str):
    """Host numpy tree -> global arrays with the train state's shardings (works multi-process: every process
    holds the same full arrays and hands each device its slice)."""
    if jax.tree.structure(host_tree) != jax.tree.structure(shardings):
        raise ConversionError(f"{where}: loaded variables do not have the train state's structure")

    def put(x, sh):
        x = np.asarray(x, np.float32)
        return jax.make_array_from_callback(x.shape, sh, lambda idx: x[idx])

    return jax.tree.map(put, host_tree, shardings)


def apply(state: dict, state_shardings: dict, loaded: nets_io.LoadedNets) -> dict:
    """The fresh train state with the loaded nets in place (optimiser states, RNG and counters untouched)."""
    new = dict(state)
    for net, variables in loaded.nets.items():
        key = STATE_KEYS[net]
        new[key] = _put(variables, state_shardings[key], f"{loaded.source} [{net}]")
    if "G" in loaded.nets and "G_ema" not in loaded.nets:
        new["ema"] = _put(loaded.nets["G"], state_shardings["ema"], f"{loaded.source} [G as G_ema]")
    return new
