"""Observability: metrics.jsonl rows, TensorBoard events, PNG grids on process 0 only; bf16 compute traces with
float32 master weights."""

from __future__ import annotations

import functools
import json

import jax
import numpy as np
from PIL import Image
from train_helpers import micro_config

from mat_jax import viz
from mat_jax.train import logs, steps


def test_writer_main_process(tmp_path):
    w = logs.Writer(tmp_path, is_main=True, total_steps=10, start_step=0, tensorboard=True, progress=True)
    w.scalars(3, {"G/total": 1.5, "D/total": float("nan")})
    images = np.zeros((2, 16, 16, 3), np.float32)
    masks = np.ones((2, 16, 16, 1), np.float32)
    masks[:, 4:8] = 0
    grid = viz.sample_grid(images, masks, images, images)
    assert grid.dtype == np.uint8 and grid.shape == (12 + 2 * 18 + 2, 5 * 18 + 2, 3)
    path = w.grid(3, grid)
    w.progress(3, {"G": 1.5})
    w.close()
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert row == {"step": 3, "G/total": 1.5, "D/total": "nan"}
    assert np.array_equal(np.asarray(Image.open(path)), grid)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_writer_other_processes_write_nothing(tmp_path):
    w = logs.Writer(tmp_path, is_main=False, total_steps=10, start_step=0)
    w.scalars(1, {"a": 1.0})
    assert w.grid(1, np.zeros((4, 4, 3), np.uint8)) is None
    w.close()
    assert list(tmp_path.iterdir()) == []


def test_bf16_compute_keeps_float32_masters():
    from mat_jax.train import loop, sharding

    config = micro_config("train.compute_dtype='bfloat16'")
    recipe = loop.recipe_from_config(config, sharding.make_mesh(1, jax.devices()[:1]))
    state = jax.eval_shape(functools.partial(steps.init_state, recipe), jax.random.key(0))
    batch = {
        "image": jax.ShapeDtypeStruct((8, 32, 32, 3), np.float32),
        "mask": jax.ShapeDtypeStruct((8, 32, 32, 1), np.float32),
    }
    new, metrics = jax.eval_shape(functools.partial(steps.main_step, recipe), state, batch, None)
    assert {x.dtype for x in jax.tree.leaves(new["g"]["params"])} == {np.dtype(np.float32)}
    assert {x.dtype for x in jax.tree.leaves(new["d_opt"])} <= {np.dtype(np.float32), np.dtype(np.int32)}
    assert metrics["G/total"].dtype == np.float32
