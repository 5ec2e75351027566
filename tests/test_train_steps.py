"""The jitted step functions on the micro config (one device): Adam step sizes, EMA, buffers, w_avg tracking
against a hand-written reference, lazy R1 gain, non-finite skipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import micro_config, micro_state, random_batch, tree_equal

from mat_jax.models import Generator
from mat_jax.train import loop, programs, sharding


@pytest.fixture(scope="module")
def progs_and_state():
    recipe, state = micro_state()
    mesh1 = sharding.make_mesh(1, jax.devices()[:1])
    progs = programs.build(recipe, mesh1, 16384)
    batch = random_batch(recipe.global_batch, recipe.model.resolution)
    state0 = jax.tree.map(np.asarray, jax.device_get(state))  # host copy: the steps donate their input
    new, metrics = progs.main_step(jax.device_put(state0, progs.state_shardings), batch, None)
    return recipe, progs, batch, state0, jax.tree.map(np.asarray, jax.device_get(new)), jax.device_get(metrics)


def test_main_step_updates_and_first_adam_step_size(progs_and_state):
    recipe, _, _, s0, s1, m = progs_and_state
    assert int(s1["step"]) == 1 and int(s1["skipped"]) == 0 and m["finite"] == 1.0
    assert all(np.isfinite(v) for v in m.values())
    # beta1 = 0 and one step: update = lr * g / (|g| + eps) -> |delta| == lr wherever the gradient is not tiny
    for net, lr in (("g", recipe.g_adam.lr), ("d", recipe.d_adam.lr)):
        new, old = (np.concatenate([x.ravel() for x in jax.tree.leaves(s[net]["params"])]) for s in (s1, s0))
        delta = np.abs(new.astype(np.float64) - old)
        assert np.all(delta <= lr * (1 + 1e-6) + np.spacing(np.abs(new))), net  # float32 storage rounding
        assert np.mean(np.isclose(delta, lr, rtol=1e-3)) > 0.8, net  # most entries moved by exactly lr
    assert int(s1["g_opt"][0].count) == 1 and int(s1["d_opt"][0].count) == 1


def test_ema_and_buffer_copy(progs_and_state):
    recipe, _, _, s0, s1, m = progs_and_state
    beta = 0.5 ** (recipe.global_batch / (recipe.ema_kimg * 1000))
    assert m["ema_beta"] == pytest.approx(beta, rel=1e-6)
    for e1, p1, e0 in zip(
        jax.tree.leaves(s1["ema"]["params"]),
        jax.tree.leaves(s1["g"]["params"]),
        jax.tree.leaves(s0["ema"]["params"]),
        strict=True,
    ):
        np.testing.assert_allclose(e1, p1 + beta * (e0 - p1), rtol=1e-6, atol=1e-7)
    assert tree_equal(s1["ema"]["buffers"], s1["g"]["buffers"])


def test_w_avg_tracks_gmain_and_dmain_batch_means(progs_and_state):
    """Reference: w_avg <- mean + 0.995 (w_avg - mean) for Gmain's z (G before its update), then Dmain's z (G
    after it), using the un-truncated w, as the official mapping in training mode."""
    recipe, _, _, s0, s1, _ = progs_and_state
    G = Generator(recipe.model)
    key = jax.random.fold_in(jax.random.wrap_key_data(s0["rng"]), 0)
    k_g, k_d = jax.random.split(key)
    w_avg = s0["g"]["buffers"]["mapping"]["w_avg"]
    for params, k in ((s0["g"]["params"], k_g), (s1["g"]["params"], k_d)):
        z = jax.random.normal(jax.random.split(k, 6)[0], (recipe.global_batch, recipe.model.z_dim))
        ws = G.apply({"params": params, "buffers": s0["g"]["buffers"]}, z, method=Generator.map)  # psi = 1
        mean = np.asarray(ws[:, 0]).mean(0)
        w_avg = mean + recipe.model.w_avg_beta * (w_avg - mean)
    np.testing.assert_allclose(s1["g"]["buffers"]["mapping"]["w_avg"], w_avg, rtol=1e-5, atol=1e-7)


def test_r1_step_gain_and_separate_adam_step(progs_and_state):
    recipe, progs, batch, _, s1, _ = progs_and_state
    s2, m = progs.r1_step(jax.device_put(s1, progs.state_shardings), batch)
    m = jax.device_get(m)
    assert recipe.d_reg_interval == 2  # tiny config: R1 every 2 iterations, so the gain is 2
    assert m["R1/total"] == pytest.approx(recipe.d_reg_interval * m["R1/reg"], rel=1e-6)
    assert m["R1/reg"] == pytest.approx((m["R1/penalty"] + m["R1/penalty_s1"]) * recipe.r1_gamma / 2, rel=1e-5)
    s2 = jax.device_get(s2)
    assert int(s2["d_opt"][0].count) == 2  # Dreg is its own optimiser step
    assert tree_equal(s2["g"], s1["g"]) and not tree_equal(s2["d"]["params"], s1["d"]["params"])


def test_nonfinite_batch_skips_the_update(progs_and_state):
    _, progs, batch, _, s1, _ = progs_and_state
    bad = {"image": np.full_like(batch["image"], np.nan), "mask": batch["mask"]}
    s2, m = progs.main_step(jax.device_put(s1, progs.state_shardings), bad, None)
    s2, m = jax.device_get(s2), jax.device_get(m)
    assert m["finite"] == 0.0 and int(s2["step"]) == 2 and int(s2["skipped"]) == 1
    for k in ("g", "d", "ema", "g_opt", "d_opt"):
        assert tree_equal(s2[k], s1[k]), k
    s3, m3 = progs.r1_step(jax.device_put(s2, progs.state_shardings), bad)
    s3 = jax.device_get(s3)
    assert jax.device_get(m3)["R1/finite"] == 0.0 and int(s3["skipped"]) == 2 and tree_equal(s3["d"], s1["d"])


def test_random_streams_differ_between_iterations_and_phases():
    from mat_jax.train import steps

    state = {"rng": jax.random.key_data(jax.random.key(0)), "step": jnp.int32(0)}
    keys0 = steps.iteration_keys(state)
    keys1 = steps.iteration_keys({**state, "step": jnp.int32(1)})
    data = [np.asarray(jax.random.key_data(k)).tobytes() for k in (*keys0, *keys1)]
    assert len(set(data)) == 4
    again = steps.iteration_keys(state)
    assert [np.asarray(jax.random.key_data(k)).tobytes() for k in again] == data[:2]


def test_bf16_compute_step_tracks_float32(progs_and_state):
    """train.compute_dtype='bfloat16' runs G and D in bf16 on float32 masters: the same first step as float32
    gives finite losses within a few percent and Adam moves (almost) every parameter the same way."""
    recipe, _, batch, s0, s1, m = progs_and_state
    config = micro_config("train.compute_dtype='bfloat16'")
    mesh1 = sharding.make_mesh(1, jax.devices()[:1])
    recipe16 = loop.recipe_from_config(config, mesh1)
    assert recipe16.compute_dtype == "bfloat16" and recipe16.model == recipe.model
    progs16 = programs.build(recipe16, mesh1, 16384)
    b16, m16 = progs16.main_step(jax.device_put(s0, progs16.state_shardings), batch, None)
    b16, m16 = jax.device_get(b16), jax.device_get(m16)
    assert m16["finite"] == 1.0 and int(b16["skipped"]) == 0
    for k in ("G/total", "D/total"):
        assert np.isfinite(m16[k]) and m16[k] == pytest.approx(m[k], rel=0.05, abs=0.02), k
    for net in ("g", "d"):
        leaves = [jax.tree.leaves(s[net]["params"]) for s in (s0, s1, b16)]
        assert {x.dtype for x in leaves[2]} == {np.dtype(np.float32)}, net
        d32, d16 = (
            np.concatenate([(a - o).ravel() for a, o in zip(ls, leaves[0], strict=True)])
            for ls in (leaves[1], leaves[2])
        )
        moved = np.abs(d32) > 0
        assert np.mean(np.sign(d16[moved]) == np.sign(d32[moved])) > 0.9, net
