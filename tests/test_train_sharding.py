"""Data-parallel and FSDP meshes over 8 simulated CPU devices give the same losses and parameters as 1 device."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from train_helpers import assert_runs_close, micro_state, random_batch, run_steps

from mat_jax.train import programs, sharding, steps

pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (simulated) devices, see conftest.py")


@pytest.fixture(scope="module")
def one_device_run():
    recipe, state = micro_state()
    host = jax.tree.map(np.asarray, jax.device_get(state))
    batches = [random_batch(recipe.global_batch, recipe.model.resolution, seed=10 + i) for i in range(2)]
    p1 = programs.build(recipe, sharding.make_mesh(1, jax.devices()[:1]), 16384)
    return recipe, host, batches, run_steps(p1, host, batches, recipe)


def test_data_parallel_8_devices_equals_1_device(one_device_run):
    recipe, host, batches, (s1, rows1) = one_device_run
    assert recipe.global_batch == 8 and recipe.mbstd_shards == 2  # 1 image per device; mbstd groups fixed
    p8 = programs.build(recipe, sharding.make_mesh(1), 16384)
    s8, rows8 = run_steps(p8, host, batches, recipe)
    assert [("Dreg" in steps.phases(i, recipe)) for i in range(2)] == [True, False]  # R1 exercised
    assert_runs_close(s8, s1, rows8, rows1, recipe.g_adam.lr)


def test_fsdp_4x2_equals_1_device(one_device_run):
    recipe, host, batches, (s1, rows1) = one_device_run
    mesh = sharding.make_mesh(4)
    assert dict(mesh.shape) == {"data": 2, "fsdp": 4}
    pf = programs.build(recipe, mesh, 256)
    specs = [s.spec for s in jax.tree.leaves(pf.state_shardings)]
    assert sum("fsdp" in tuple(s) for s in specs) > 10  # parameters and Adam moments are really split
    sf, rowsf = run_steps(pf, host, batches, recipe)
    assert_runs_close(sf, s1, rowsf, rows1, recipe.g_adam.lr)


def test_param_spec_rule():
    assert sharding.param_spec((512, 512, 3, 3), 1, 16) == sharding.P()
    assert sharding.param_spec((3, 3, 64, 128), 4, 16) == sharding.P(None, None, None, "fsdp")
    assert sharding.param_spec((6, 10), 4, 16) == sharding.P()  # nothing divisible: replicated
    assert sharding.param_spec((8,), 4, 16) == sharding.P()  # small: replicated


def test_mesh_and_batch_checks():
    with pytest.raises(ValueError, match="mesh.fsdp=3"):
        sharding.make_mesh(3)
    with pytest.raises(ValueError, match="global_batch_size=6 is not divisible by the 8 devices"):
        sharding.check_global_batch(6, sharding.make_mesh(1), 1)
