"""The train loop: mesh -> recipe -> state (fresh or resumed) -> iterate (main step, lazy R1) -> log, sample,
checkpoint; SIGTERM/SIGINT save at the next agreed step boundary and return; K non-finite iterations in a row raise.

The loop never waits for the devices between log steps: step n+1 is dispatched (and its batch loaded and sent to
the devices, `_Prefetch`) while step n runs; the metrics of the steps in between stay on the devices and are read,
all at once, on log steps (`logging.log_every_steps`), where the non-finite streak is also checked: a run of
non-finite iterations is caught within log_every_steps iterations, and every checkpoint written meanwhile holds the
last finite parameters (a non-finite iteration skips its update on the device). Checkpoints, sample grids and
evaluations read the state and so wait for the step they follow.

Run commands:
  mat-jax train --config configs/demo.py --workdir runs/demo
  python -m mat_jax.train --config configs/places512.py --workdir runs/p512 --config.data.path=/data/places/train
"""

from __future__ import annotations

import math
import pathlib
import signal
import threading
import time

import jax
import numpy as np

from mat_jax import viz
from mat_jax.config import model_config
from mat_jax.data import pipeline
from mat_jax.models.config import MATConfig
from mat_jax.train import evaluation, finetune, hosts, logs, programs, run_dir, sharding, steps
from mat_jax.train.checkpoint import Checkpointer
from mat_jax.train.steps import recipe_from_config  # noqa: F401  (loop.recipe_from_config: the loop's entry)

log = logs.log


class NonFiniteLossError(RuntimeError):
    """Too many consecutive iterations with a non-finite loss (`mat-jax train` exits with this status)."""

    exit_code = 3


def resolve_model_config(config, data_cfg: pipeline.DataConfig):
    """config.model with c_dim resolved from the data's labels (before any compile): labels on and c_dim 0 ->
    c_dim = num_classes; labels on and c_dim != num_classes, or labels off and c_dim > 0 -> ValueError."""
    cfg = model_config(config)
    n = pipeline.num_classes(data_cfg)
    if n == 0:
        if cfg.c_dim > 0:
            raise ValueError(
                f"model.c_dim={cfg.c_dim} but the data has no labels: set data.labels="
                f"'dataset_json' | 'subfolders' (folder) | 'tfds', or model.c_dim=0"
            )
        return cfg
    if cfg.c_dim == 0:
        log.info("class-conditional: model.c_dim=%d from the %d classes of data.labels=%r", n, n, data_cfg.labels)
        return cfg.replace(c_dim=n)
    if cfg.c_dim != n:
        raise ValueError(
            f"model.c_dim={cfg.c_dim} but data.labels={data_cfg.labels!r} gives num_classes={n}; "
            "set model.c_dim=0 (taken from the data) or to the number of classes"
        )
    return cfg


def check_config(config) -> tuple[pipeline.DataConfig, MATConfig]:
    """(data config, resolved model config) of a training config, after every check that needs no device, no
    compile and no training data read: the architecture (MATConfig), the data and eval sections, resolutions, the
    perceptual loss's weights. ValueError naming the fields; `train` and `mat-jax sweep` (before any run) call it."""
    data_cfg = pipeline.from_config(config.data)
    model = resolve_model_config(config, data_cfg)
    if data_cfg.resolution != model.resolution:
        raise ValueError(f"data.resolution={data_cfg.resolution} != model.resolution={model.resolution}")
    pcp = float(config.loss.pcp_ratio)
    if pcp > 0 and not config.loss.vgg_weights:
        raise ValueError(
            f"loss.pcp_ratio={pcp} needs VGG19 weights: pass --config.loss.vgg_weights=PATH to a "
            "torchvision vgg19 state_dict (.pth or .safetensors; nothing is downloaded), or set "
            "--config.loss.pcp_ratio=0"
        )
    evaluation.eval_config(config)
    return data_cfg, model


def total_steps(config) -> int:
    if config.train.total_steps and config.train.total_steps > 0:
        return int(config.train.total_steps)
    return int(math.ceil(config.train.total_kimg * 1000 / config.train.global_batch_size))


class _StopFlag:
    """Set by SIGTERM / SIGINT; the loop saves and returns at the next step boundary."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return self  # signals can only be handled on the main thread (e.g. not inside some test runners)
        for s in (signal.SIGTERM, signal.SIGINT):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def uninstall(self):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def any_process(self, step: int, every: int) -> bool:
        """The flag agreed over all processes, checked every `every` steps in a multi-process run (a collective),
        every step in a single process (free)."""
        if jax.process_count() > 1 and step % max(every, 1):
            return False
        return self._agreed()

    def _agreed(self) -> bool:
        """The flag agreed over all processes (each host may receive the signal at a different step)."""
        local = self.signum is not None
        if jax.process_count() == 1:
            return local
        from jax.experimental import multihost_utils

        return bool(np.max(multihost_utils.process_allgather(np.int32(local))))


def _grid_inputs(data_cfg: pipeline.DataConfig, n: int, seed: int, z_dim: int, c_dim: int = 0):
    """Fixed grid inputs, identical on every process: the first `n` evaluation-style records (center crop,
    no flip) with their seeded masks, and fixed latents; + their one-hot labels when c_dim > 0."""
    ds = pipeline.make_dataset(pipeline.eval_config(data_cfg), seed=seed, batch_size=n)
    b = ds[0]
    z = np.random.default_rng(seed).standard_normal((b["image"].shape[0], z_dim)).astype(np.float32)
    c = (np.asarray(b["label"], np.float32),) if c_dim > 0 else ()
    return (np.asarray(b["image"], np.float32), np.asarray(b["mask"], np.float32), z, *c)


class _Prefetch:
    """The data iterator one batch ahead: `prefetch()` loads the next host batch and starts its transfer to the
    devices (`to_device`) while the current step runs. get_state / set_state (what the grain checkpoint handler
    calls) describe the stream *before* a prefetched batch that was not handed out yet, so a checkpoint never
    skips it."""

    def __init__(self, it, to_device):
        self.it, self.to_device = it, to_device
        self._ready, self._state = None, None

    def prefetch(self) -> None:
        if self._ready is None:
            self._state = self.it.get_state()
            self._ready = self.to_device(next(self.it))

    def __next__(self):
        self.prefetch()
        batch, self._ready = self._ready, None
        return batch

    def peek(self):
        """The batch the next `next()` returns, prefetched now (e.g. to compile the step for it)."""
        self.prefetch()
        return self._ready

    def get_state(self):
        return self._state if self._ready is not None else self.it.get_state()

    def set_state(self, state) -> None:
        self._ready = None
        self.it.set_state(state)


def _mean_metrics(rows: list[dict]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r})
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


def train(config, workdir: str | pathlib.Path, *, batch_transform=None) -> dict:
    """Train (or resume) in `workdir`. Returns {"status": "completed" | "preempted", "step": int, ...}.

    batch_transform(step, local_batch) -> local_batch is applied to every host batch before it is sent to the
    devices (fault-injection hook for tests).
    """
    workdir = pathlib.Path(workdir).absolute()
    is_main = jax.process_index() == 0
    if is_main:
        workdir.mkdir(parents=True, exist_ok=True)
    logs.setup_python_logging(workdir, is_main)

    # ---- mesh, recipe, checks (before any compile or step) ----
    devices = None
    if config.mesh.num_devices:
        if jax.process_count() > 1:
            raise ValueError("mesh.num_devices must be 0 (all devices) in a multi-process run")
        devices = jax.devices()[: int(config.mesh.num_devices)]
    mesh = sharding.make_mesh(config.mesh.fsdp, devices)
    data_cfg, model = check_config(config)
    recipe = recipe_from_config(config, mesh, model)
    sharding.check_global_batch(recipe.global_batch, mesh, jax.process_count(), recipe.grad_accum_steps)
    vgg_params = None
    if recipe.pcp_ratio > 0:
        from mat_jax.train.vgg import load_vgg19_params

        vgg_params = jax.device_put(load_vgg19_params(config.loss.vgg_weights), sharding.replicated(mesh))
    n_steps = total_steps(config)
    evaluate = evaluation.build(config, data_cfg, recipe, mesh, workdir)  # set and weights checked before compiling
    progs = programs.build(recipe, mesh, int(config.mesh.fsdp_min_size))
    if is_main:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
        run_dir.write_model_config(workdir, recipe.model)  # what inpaint / convert / eval rebuild from this run
        log.info(
            "mesh %s over %d devices (%d processes); global batch %d (%d per device); %d iterations; "
            "G Adam %s; D Adam %s; mbstd shards %d",
            dict(mesh.shape),
            mesh.size,
            jax.process_count(),
            recipe.global_batch,
            recipe.global_batch // mesh.size,
            n_steps,
            recipe.g_adam,
            recipe.d_adam,
            recipe.mbstd_shards,
        )

    # ---- data and state: fresh or resumed ----
    data_iter, _ = pipeline.make_train_iterator(data_cfg, seed=int(config.seed), global_batch_size=recipe.global_batch)
    ckpt = Checkpointer(
        workdir / "checkpoints",
        max_to_keep=int(config.checkpoint.max_to_keep),
        async_save=bool(config.checkpoint.async_save),
    )
    latest = ckpt.latest_step()
    init_cfg = config.get("init")
    init_src = init_cfg.checkpoint if init_cfg is not None else ""
    if latest is None:
        loaded = finetune.load(init_cfg, recipe.model) if init_src else None  # checked before compiling
        state = progs.init(jax.random.key(int(config.seed)))
        data_batches = 0
        log.info("starting fresh at step 0 (no checkpoint in %s)", ckpt.directory)
        if loaded is not None:
            state = finetune.apply(state, progs.state_shardings, loaded)
            log.info("initialised %s (Adam states fresh; init.nets=%s)", loaded.describe(), tuple(init_cfg.nets))
    else:
        if init_src:
            log.info("init.checkpoint=%s is ignored: the run resumes from its own checkpoint", init_src)
        target = sharding.with_shardings(progs.abstract_state, progs.state_shardings)
        state, meta = ckpt.restore(latest, target, data_iter)
        data_batches = int(meta["data_batches"])
        log.info(
            "resuming from checkpoint step %d (%.3f kimg, saved by %s process(es) on %s device(s)) in %s",
            latest,
            meta["images_seen"] / 1000,
            meta["process_count"],
            meta["device_count"],
            ckpt.directory,
        )
    step = int(sharding.to_host(state["step"]))
    if is_main:
        n_g = sum(x.size for x in jax.tree.leaves(progs.abstract_state["g"]["params"]))
        n_d = sum(x.size for x in jax.tree.leaves(progs.abstract_state["d"]["params"]))
        log.info("parameters: G %.2f M, D %.2f M", n_g / 1e6, n_d / 1e6)

    def meta_now():
        return {
            "step": step,
            "images_seen": step * recipe.global_batch,
            "data_batches": data_batches,
            "process_count": jax.process_count(),
            "device_count": jax.device_count(),
            "seed": int(config.seed),
        }

    # ---- observability ----
    writer = logs.Writer(
        workdir,
        is_main=is_main,
        total_steps=n_steps,
        start_step=step,
        tensorboard=bool(config.logging.tensorboard),
        progress=bool(config.logging.progress_bar),
    )
    grid_n = int(config.logging.grid_size)
    grid_in = (
        _grid_inputs(data_cfg, grid_n, int(config.seed), recipe.model.z_dim, recipe.model.c_dim) if grid_n > 0 else None
    )
    sample_fn = programs.build_sampler(recipe, mesh, int(config.mesh.fsdp_min_size)) if grid_n > 0 else None

    def write_grid():
        if sample_fn is None:
            return
        images, masks = grid_in[:2]
        final, stage1 = sharding.to_host(sample_fn(state["ema"], *grid_in))
        path = writer.grid(step, viz.sample_grid(images, masks, stage1, final))
        if path is not None:
            log.info("sample grid: %s", path)

    def save():
        ckpt.save(step, state, batches, meta_now())
        log.info("checkpoint step %d (%.3f kimg) -> %s", step, step * recipe.global_batch / 1000, ckpt.directory)

    stop = _StopFlag().install()
    timer = logs.Timer()
    pending: list[dict] = []  # metrics of the steps since the last log step, still on the devices
    streak, streak_start, failure = 0, None, None  # failure: (streak, first, last iteration) once it is too long
    log_every = max(int(config.logging.log_every_steps), 1)
    grid_every = int(config.logging.grid_every_steps)
    ckpt_every = int(config.checkpoint.every_steps)
    stop_every = int(config.train.preemption_check_every_steps)
    lr_scalars = {"lr/G": recipe.g_adam.lr, "lr/D": recipe.d_adam.lr}
    if recipe.g_adam.lr_transformer is not None:
        lr_scalars["lr/G_transformer"] = recipe.g_adam.lr_transformer
    batch_keys = sharding.batch_keys(recipe.model.c_dim)

    def to_device(local):  # host batch of iteration `step` (the one it is prefetched for) -> global arrays
        if batch_transform is not None:
            local = batch_transform(step, local)
        return sharding.global_batch_from_local({k: local[k] for k in batch_keys}, mesh)

    batches = _Prefetch(data_iter, to_device)
    main_step, r1_step = progs.main_step, progs.r1_step
    if jax.process_count() > 1 and step < n_steps:  # see mat_jax.train.hosts: no process runs a step alone
        todo = {"main": (main_step, (state, batches.peek(), vgg_params)), "r1": (r1_step, (state, batches.peek()))}
        if sample_fn is not None:
            todo["sample"] = (sample_fn, (state["ema"], *grid_in))
        compiled = hosts.compile_together(todo, key=f"steps_compiled_from_{step}")
        main_step, r1_step, sample_fn = compiled["main"], compiled["r1"], compiled.get("sample", sample_fn)
    status = "completed"
    if step == 0 and grid_every > 0:
        write_grid()
    try:
        while step < n_steps:
            if stop.any_process(step, stop_every):
                status = "preempted"
                break
            t0 = time.perf_counter()
            batch = next(batches)
            data_batches += 1
            it_phases = steps.phases(step, recipe)
            # No implicit host<->device copy may happen in the dispatch: every transfer is explicit (the batch's
            # device_put in _Prefetch, jax.device_get of the metrics on log steps), so an accidental one (a numpy
            # array or Python scalar reaching a step, a state on the wrong sharding) fails here instead of
            # silently stalling every step.
            with jax.transfer_guard("disallow"):
                state, metrics = main_step(state, batch, vgg_params)
                if "Dreg" in it_phases:
                    state, m_r1 = r1_step(state, batch)
                    metrics = {**metrics, **m_r1}
            step += 1
            timer.tick()
            save_now = ckpt_every > 0 and step % ckpt_every == 0 and step < n_steps
            if step < n_steps and not save_now:
                batches.prefetch()  # next batch to the devices while this step runs (after a save otherwise)
            pending.append({"metrics": metrics, "step": step, "host_s": time.perf_counter() - t0})
            if step % log_every == 0 or step == n_steps:
                rows = []
                for item in pending:  # in order: the streak and its warnings as if read every step
                    m = {k: float(v) for k, v in sharding.to_host(item["metrics"]).items()}
                    m["perf/host_time_s"] = item["host_s"]  # data + dispatch; well below step_time_s = not data-bound
                    rows.append(m)
                    if m["finite"] == 1.0 and m.get("R1/finite", 1.0) == 1.0:
                        streak = 0
                        continue
                    streak += 1
                    streak_start = item["step"] - 1 if streak == 1 else streak_start
                    bad = {k: v for k, v in m.items() if not math.isfinite(v)}
                    log.warning(
                        "non-finite loss at iteration %d (update skipped, %d in a row): %s",
                        item["step"] - 1,
                        streak,
                        bad,
                    )
                    if streak >= int(config.train.max_consecutive_nonfinite):
                        failure = (streak, streak_start, item["step"] - 1)
                        break  # the rows read so far are still written below, then the run stops
                pending = []
                scalars = {
                    **_mean_metrics(rows),
                    **timer.read(recipe.global_batch),
                    **logs.peak_memory(),
                    **lr_scalars,
                    "progress/kimg": step * recipe.global_batch / 1000,
                    "nonfinite/skipped_total": float(sharding.to_host(state["skipped"])),
                }
                writer.scalars(step, scalars)
                writer.progress(
                    step, {"G": scalars.get("G/total", float("nan")), "D": scalars.get("D/total", float("nan"))}
                )
                if failure is not None:
                    ckpt.wait()
                    n_bad, first, last_bad = failure
                    raise NonFiniteLossError(
                        f"{n_bad} consecutive iterations ({first}..{last_bad}) had non-finite "
                        f"losses (train.max_consecutive_nonfinite={config.train.max_consecutive_nonfinite}); "
                        f"their updates were skipped. Last checkpoint: step {ckpt.latest_step()} in {ckpt.directory} "
                        "(intact; a restart resumes from it). Check the data around these iterations and the learning "
                        "rates."
                    )
            if grid_every > 0 and step % grid_every == 0:
                write_grid()
            if save_now:
                save()
            if evaluate is not None and evaluate.due(step) and step < n_steps:
                evaluate(step, state["ema"], writer)
        if status == "preempted":
            log.warning("signal %s received: saving at step %d and exiting", stop.signum, step)
        if ckpt.latest_step() != step:
            save()
        if status == "completed" and (grid_every <= 0 or step % grid_every):
            write_grid()
        if status == "completed" and evaluate is not None:
            evaluate(step, state["ema"], writer)  # the final numbers, of the final checkpoint
        ckpt.wait()
        log.info("%s at step %d (%.3f kimg)", status, step, step * recipe.global_batch / 1000)
        return {"status": status, "step": step, "workdir": str(workdir)}
    finally:
        stop.uninstall()
        writer.close()
        ckpt.close()
