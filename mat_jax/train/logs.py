"""Observability on process 0: python log file, TensorBoard (tensorboardX, no TensorFlow), `metrics.jsonl`, PNG
sample grids (drawn by `mat_jax.viz.sample_grid`), and a tqdm progress bar with ETA. Other processes get no-op
writers (side effects on process 0 only).
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import resource
import sys
import time

import jax
import numpy as np

from mat_jax import viz

log = logging.getLogger("mat_jax.train")


def setup_python_logging(workdir: pathlib.Path, is_main: bool) -> None:
    """INFO to stderr and `<workdir>/train.log` on process 0; warnings only elsewhere."""
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if is_main:
        handlers.append(logging.FileHandler(workdir / "train.log"))
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)


class Writer:
    """Scalars to TensorBoard + metrics.jsonl, grids to PNG + TensorBoard, progress bar. No-op when not main."""

    def __init__(
        self,
        workdir: pathlib.Path,
        *,
        is_main: bool,
        total_steps: int,
        start_step: int,
        tensorboard: bool = True,
        progress: bool = True,
    ):
        self.is_main = is_main
        self.workdir = workdir
        self.tb = None
        self.bar = None
        self.jsonl = None
        if not is_main:
            return
        (workdir / "samples").mkdir(parents=True, exist_ok=True)
        self.jsonl = open(workdir / "metrics.jsonl", "a")
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                log.warning("tensorboardX is not installed: no TensorBoard events (pip install tensorboardX)")
            else:
                self.tb = SummaryWriter(str(workdir / "tensorboard"))
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, file=sys.stderr, smoothing=0.1
            )

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.is_main:
            return
        clean = {k: float(v) for k, v in values.items()}
        row = {"step": step, **{k: (v if math.isfinite(v) else str(v)) for k, v in clean.items()}}
        self.jsonl.write(json.dumps(row) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in clean.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()

    def grid(self, step: int, grid_uint8: np.ndarray) -> pathlib.Path | None:
        if not self.is_main:
            return None
        path = viz.save_png(self.workdir / "samples" / f"grid_{step:08d}.png", grid_uint8)
        if self.tb is not None:
            self.tb.add_image("samples", grid_uint8, step, dataformats="HWC")
            self.tb.flush()
        return path

    def progress(self, step: int, postfix: dict[str, float] | None = None) -> None:
        if self.bar is None:
            return
        self.bar.update(step - self.bar.n)
        if postfix:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in postfix.items()}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.jsonl is not None:
            self.jsonl.close()


def peak_memory() -> dict[str, float]:
    """Peak memory so far, GiB: the largest `peak_bytes_in_use` of this process's devices (GPU/TPU) as
    `perf/peak_memory_gb`; the CPU backend keeps no memory stats, so there the process's peak RSS as
    `perf/peak_memory_rss_gb`. `mat-jax compare` reads either."""
    stats = [d.memory_stats() or {} for d in jax.local_devices()]
    peaks = [s["peak_bytes_in_use"] for s in stats if "peak_bytes_in_use" in s]
    if peaks:
        return {"perf/peak_memory_gb": max(peaks) / 2**30}
    return {"perf/peak_memory_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30}


class Timer:
    """Wall time per interval and images/s."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.steps = 0

    def tick(self) -> None:
        self.steps += 1

    def read(self, global_batch: int) -> dict[str, float]:
        dt = time.perf_counter() - self.t0
        out = {}
        if self.steps:
            out = {"perf/step_time_s": dt / self.steps, "perf/images_per_s": self.steps * global_batch / dt}
        self.t0, self.steps = time.perf_counter(), 0
        return out
