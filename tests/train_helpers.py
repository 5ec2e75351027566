"""Shared pieces of the training tests: a micro config (32 px) and its compiled programs, cached per process so
every test module reuses one compile per mesh."""

from __future__ import annotations

import functools
import os
import pathlib
import socket

import jax
import numpy as np

from mat_jax.config import load_config

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.py"

# configs/tiny.py shrunk to 32 px with depth-1 transformer layers: compiles ~2x faster than 64 px. The training
# tests test the training system (resume, sharding, steps, recipes), not the convolution algorithm, and compile
# many programs: they use the direct custom-gradient convolutions, which compile ~30 % faster than Winograd's 16
# matmuls per layer (Winograd's values, gradients, second order and sharded runs: tests/test_winograd.py).
MICRO_OVERRIDES = (
    "model.resolution=32",
    "model.stage1_token_res=16",
    "model.stage1_depths=(1, 1, 1, 1, 1)",
    "model.z_dim=16",
    "model.w_dim=16",
    "model.mapping_layers=1",
    "data.resolution=32",
    "model.conv=custom",
)


def micro_config(*overrides: str):
    return load_config(TINY, [*MICRO_OVERRIDES, *overrides])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a local jax.distributed coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(**extra: str) -> dict:
    """Environment of a training subprocess: same device count and compilation cache as the test session."""
    env = dict(os.environ)
    env.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    env.update(
        {
            "JAX_COMPILATION_CACHE_DIR": str(REPO / ".jax_cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
            "JAX_COMPILATION_CACHE_MAX_SIZE": str(jax.config.jax_compilation_cache_max_size),  # locked: conftest.py
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def random_batch(batch: int, res: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (batch, res, res, 3)).astype(np.float32)
    masks = np.ones((batch, res, res, 1), np.float32)
    for i in range(batch):  # a rectangular hole per image (0 = hole)
        y, x = rng.integers(0, res // 2, 2)
        masks[i, y : y + res // 2, x : x + res // 2] = 0
    return {"image": images, "mask": masks}


@functools.lru_cache(maxsize=None)
def micro_state(seed: int = 0):
    """(recipe, fresh state on one device) of the micro config, initialised once per process."""
    from mat_jax.train import loop, programs, sharding

    config = micro_config()
    mesh1 = sharding.make_mesh(1, jax.devices()[:1])
    recipe = loop.recipe_from_config(config, mesh1)
    progs = programs.build(recipe, mesh1, int(config.mesh.fsdp_min_size))
    return recipe, progs.init(jax.random.key(seed))


def tree_equal(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def _zero_grad_param(path: str) -> bool:
    """Attention key biases: q . b_k is the same for every key of a query, so softmax cancels it and the true
    gradient is exactly 0. Adam normalises the remaining float noise (g / (|g| + eps)), so these entries move by
    noise-driven amounts that no device-count comparison can pin down; they are checked for staying tiny."""
    return "['attn']['k']['bias']" in path


def assert_runs_close(a, b, rows_a, rows_b, lr):
    """Two runs of the same steps (states a, b as numpy; their metric rows) agree up to float summation order: the
    tolerances below say why they are what they are."""
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert set(ra) == set(rb)
        for k in ra:
            np.testing.assert_allclose(ra[k], rb[k], rtol=1e-4, atol=1e-6, err_msg=k)
    n_checked = 0
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b), strict=True):
        name = jax.tree_util.keystr(path)
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if _zero_grad_param(name):
            assert np.abs(x).max() <= 4 * lr and np.abs(y).max() <= 4 * lr, name
            continue
        # Leaf-relative tolerances. Adam moments: 1e-2 of the leaf's scale. Parameters/EMA: 99.9 % of the
        # elements within 1e-5 of the leaf's scale + 1e-2 of one Adam step (leaves starting at 0, e.g. biases, move
        # by ~lr per step), every element within 4.2 lr (sign flips in both steps): weights whose gradient is
        # ~eps-small (e.g. dead channels of Dec_16x16 conv0 here) get visibly different Adam steps (g / (|g| + eps))
        # from any change of the float32 summation order (seen for 8-device DP in some runs and for FSDP). A
        # sharding bug (wrong mbstd groups, unaveraged gradients) changes the losses (compared to 1e-4 above) and
        # moves most elements by O(lr).
        scale = max(np.abs(y).max(), 1e-20)
        diff = np.abs(x - y)
        if "opt" in name:
            assert diff.max() <= 1e-2 * scale, (name, diff.max(), scale)
        else:
            tight = diff <= 1e-5 * scale + 1e-2 * lr
            assert tight.mean() >= 0.999 and diff.max() <= 4.2 * lr, (name, tight.mean(), diff.max())
        n_checked += 1
    assert n_checked > 100


def run_steps(progs, state_host, batches, recipe):
    """Iterations 0.. on `batches` (main step, R1 where due) from a host state -> (final numpy state, metric rows)."""
    from mat_jax.train import steps

    state = jax.device_put(state_host, progs.state_shardings)
    rows = []
    for i, b in enumerate(batches):
        state, m = progs.main_step(state, b, None)
        if "Dreg" in steps.phases(i, recipe):
            state, m_r1 = progs.r1_step(state, b)
            m = {**m, **m_r1}
        rows.append(jax.device_get(m))
    return jax.tree.map(np.asarray, jax.device_get(state)), rows
