"""The memory knobs compute the plain step: model.remat ('transformer', 'all') and train.grad_accum_steps give the
losses, gradients (through Adam's update) and new parameters of the plain big-batch step within float tolerance (one
device, the micro config: 2 iterations, the first with lazy R1); bf16 compute tracks float32 over 20
iterations (slow)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from train_helpers import assert_runs_close, micro_state, random_batch, run_steps

from mat_jax.models import Generator
from mat_jax.train import programs, sharding, steps


def _mesh1():
    return sharding.make_mesh(1, jax.devices()[:1])


@pytest.fixture(scope="module")
def plain_run():
    recipe, state = micro_state()
    host = jax.tree.map(np.asarray, jax.device_get(state))
    batches = [random_batch(recipe.global_batch, recipe.model.resolution, seed=20 + i) for i in range(2)]
    assert [("Dreg" in steps.phases(i, recipe)) for i in range(2)] == [True, False]  # R1 exercised
    return recipe, host, batches, run_steps(programs.build(recipe, _mesh1(), 16384), host, batches, recipe)


def _checkpointed_blocks(recipe: steps.Recipe, host: dict) -> int:
    """Top-level jax.checkpoint calls in the synthesis forward (what nn.remat wraps)."""
    b, r = 2, recipe.model.resolution
    images, masks = np.zeros((b, r, r, 3), np.float32), np.ones((b, r, r, 1), np.float32)
    ws = np.zeros((b, recipe.model.num_ws, recipe.model.w_dim), np.float32)
    jaxpr = jax.make_jaxpr(
        lambda v: Generator(recipe.model).apply(v, images, masks, ws, "const", "ones", method=Generator.synthesize)
    )(host["g"])
    return sum(e.primitive.name in ("checkpoint", "remat2") for e in jaxpr.jaxpr.eqns)  # its name in jax 0.10: remat2


@pytest.mark.parametrize("remat,blocks", [("none", 0), ("transformer", 5), ("all", 10)])
def test_remat_checkpoints_the_named_blocks(remat, blocks):
    """5 transformer layers; 'all' adds the stage-2 encoder (32, 16) and decoder (16, 32) blocks and stage 1's one
    style-decoder block of this 32 px model (a trace: nothing compiles)."""
    recipe, state = micro_state()
    host = jax.tree.map(np.asarray, jax.device_get(state))
    assert _checkpointed_blocks(dataclasses.replace(recipe, model=recipe.model.replace(remat=remat)), host) == blocks


# 'all' checkpoints every block 'transformer' does and more (the check above): its compiled step is the fast suite's
# equality test, 'transformer''s runs under -m slow (each compiles two iterations of its own, ~2 min on 2 cores).
@pytest.mark.parametrize("remat", [pytest.param("transformer", marks=pytest.mark.slow), "all"])
def test_remat_equals_plain_step(plain_run, remat):
    """remat recomputes the same operations in the backward pass; tolerance: metrics (losses, gradient norms) within
    rtol 1e-5, parameters and Adam moments as assert_runs_close (Adam's g / (|g| + eps) turns rounding-level gradient
    differences of near-zero gradients into visible steps)."""
    recipe, host, batches, (s, rows) = plain_run
    r = dataclasses.replace(recipe, model=recipe.model.replace(remat=remat))
    s2, rows2 = run_steps(programs.build(r, _mesh1(), 16384), host, batches, r)
    for a, b in zip(rows, rows2, strict=True):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-7, err_msg=k)
    assert_runs_close(s2, s, rows2, rows, recipe.g_adam.lr)


def test_grad_accumulation_equals_big_batch_step(plain_run):
    """2 micro-batches of 4 (each with 1 of the big batch's 2 minibatch-std shards) averaged before each Adam step:
    the same iteration as the batch of 8, up to float summation order (tolerances of assert_runs_close: metrics
    rtol 1e-4)."""
    recipe, host, batches, (s, rows) = plain_run
    r = dataclasses.replace(recipe, grad_accum_steps=2)
    assert (r.micro_batch, r.micro_mbstd_shards) == (4, 1)
    s2, rows2 = run_steps(programs.build(r, _mesh1(), 16384), host, batches, r)
    assert int(s2["g_opt"][0].count) == 2 and int(s2["d_opt"][0].count) == 3  # one Adam step per phase
    assert_runs_close(s2, s, rows2, rows, recipe.g_adam.lr)


def test_grad_accumulation_must_keep_whole_mbstd_shards(plain_run):
    recipe = plain_run[0]
    with pytest.raises(ValueError, match=r"train.grad_accum_steps=4 must .* divide .*train.mbstd_shards=2"):
        dataclasses.replace(recipe, grad_accum_steps=4)
    with pytest.raises(ValueError, match=r"train.grad_accum_steps=3 must .* train.global_batch_size=8"):
        dataclasses.replace(recipe, grad_accum_steps=3)


# Band of the bf16 run around the float32 run, per iteration, absolute. Measured on this micro config (20
# iterations, seeds 100..119): max |bf16 - f32| was 0.012 (G/total), 0.032 (D/total), 0.010 (G/loss), 0.008
# (D/loss), 0.022 (G/l1); the band is about 3x that. A dtype bug (a cast lost, a loss computed in bf16 and
# accumulated there, float32 masters not updated) moves the losses by O(0.1..1) or makes them non-finite.
BF16_BAND = {"G/total": 0.05, "D/total": 0.1, "G/loss": 0.05, "D/loss": 0.05, "G/l1": 0.07}


@pytest.mark.slow  # two 20-iteration runs, each with its own compile (~6 min on 2 cores)
def test_bf16_losses_track_float32_over_20_iterations():
    recipe, state = micro_state()
    host = jax.tree.map(np.asarray, jax.device_get(state))
    batches = [random_batch(recipe.global_batch, recipe.model.resolution, seed=100 + i) for i in range(20)]
    runs = {}
    for dt in ("float32", "bfloat16"):
        r = dataclasses.replace(recipe, compute_dtype=dt)
        runs[dt] = run_steps(programs.build(r, _mesh1(), 16384), host, batches, r)
    (_, rows32), (s16, rows16) = runs["float32"], runs["bfloat16"]
    assert all(r["finite"] == 1.0 for r in rows16 + rows32)
    for k, band in BF16_BAND.items():
        a = np.array([float(r[k]) for r in rows32])
        b = np.array([float(r[k]) for r in rows16])
        assert np.abs(a - b).max() <= band, (k, np.abs(a - b).max())
    assert not np.array_equal(a, b)  # bf16 really ran (its rounding shows)
    # float32 masters: the bf16 run's parameters are float32 and moved by training
    leaves16, leaves0 = jax.tree.leaves(s16["g"]["params"]), jax.tree.leaves(host["g"]["params"])
    assert all(x.dtype == np.float32 for x in leaves16)
    assert any(not np.array_equal(x, y) for x, y in zip(leaves16, leaves0, strict=True))
