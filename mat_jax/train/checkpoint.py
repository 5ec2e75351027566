"""Orbax checkpoints of the whole training run, and auto-resume.

One checkpoint = three items under `<workdir>/checkpoints/<step>/`:
  state      the train-state pytree (G, D, G_ema, both Adam states, buffers incl. w_avg, step, RNG, skip counter),
             saved sharded; restored onto any mesh via an abstract target that carries the new shardings;
  data_iter  the grain iterator state, one file per process (`process_{i}-of-{n}.json`);
  meta       JSON: step, images seen, batches consumed, process/device counts.
Saves are asynchronous (device->host copy blocks, the write does not); `max_to_keep` old steps are kept.

Restoring with a different process count: grain's per-process files do not match, so the iterator is positioned
from `meta["data_batches"]` instead. This is exact for the in-process iterator (`{"next_index": k}`): the pipeline
shuffles and augments before the per-host split, so batch k of the single-process stream is the union of the
processes' batches k.
"""

from __future__ import annotations

import logging
import pathlib

import grain
import jax
import orbax.checkpoint as ocp

log = logging.getLogger("mat_jax.train")


class _StateSnapshot(grain.DatasetIterator):
    """An iterator's `get_state()` read when the save is called, in the form grain's orbax handler writes: it
    JSON-dumps the state of a `grain.DatasetIterator` and takes anything else for a DataLoader iterator (whose state
    is bytes). This lets the loop's prefetching wrapper be saved, and the handler may run in a background thread
    (asynchronous saves) without reading a stream that has moved on."""

    def __init__(self, state: dict):
        super().__init__()
        self._state = state

    def __next__(self):
        raise TypeError("a saved iterator state yields nothing")

    def get_state(self) -> dict:
        return self._state

    def set_state(self, state) -> None:
        raise TypeError("a saved iterator state cannot be restored into; restore into the live iterator")


def complete_steps(directory: str | pathlib.Path) -> list[int]:
    """The steps whose checkpoints were completely written, ascending (orbax writes each step in a temporary
    directory and renames it once all processes are done, so an interrupted save is not among them). Reads the
    directory only: no collective, callable from any one process at any time."""
    directory = pathlib.Path(directory).absolute()
    return sorted(ocp.utils.checkpoint_steps(directory)) if directory.is_dir() else []


class Checkpointer:
    def __init__(self, directory: str | pathlib.Path, *, max_to_keep: int = 3, async_save: bool = True):
        self.directory = pathlib.Path(directory).absolute()  # orbax requires absolute paths
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True, save_interval_steps=1
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state, data_iter, meta: dict) -> None:
        """Collective on all processes. Returns once the arrays are copied off the devices. `data_iter`: anything
        with grain's `get_state()` (read now, not when the background write runs)."""
        items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
        if data_iter is not None:
            items["data_iter"] = grain.checkpoint.CheckpointSave(_StateSnapshot(data_iter.get_state()))
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)

    def restore(self, step: int, target, data_iter):
        """(state, meta) of `step`; `target` = ShapeDtypeStructs with the shardings to restore onto. `data_iter`
        is set in place to where the saved run's stream stood."""
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        items = {"state": ocp.args.StandardRestore(target)}
        own_file = (
            self.directory / str(step) / "data_iter" / f"process_{jax.process_index()}-of-{jax.process_count()}.json"
        )
        grain_exact = data_iter is not None and own_file.is_file()
        if grain_exact:
            items["data_iter"] = grain.checkpoint.CheckpointRestore(data_iter)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        if data_iter is not None and not grain_exact:
            state = data_iter.get_state()
            if set(state) != {"next_index"}:
                raise RuntimeError(
                    f"checkpoint {self.directory / str(step)} was written by {meta.get('process_count')} process(es) "
                    f"and has no data-iterator file for process {jax.process_index()} of {jax.process_count()}; "
                    "repositioning by batch index needs data.num_workers=0 (iterator state "
                    f"{sorted(state)})"
                )
            data_iter.set_state({"next_index": int(meta["data_batches"])})
            log.info(
                "data iterator: no grain state for %d process(es) in this checkpoint; positioned at batch %d "
                "from the metadata",
                jax.process_count(),
                meta["data_batches"],
            )
        return restored["state"], meta

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
