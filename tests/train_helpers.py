"""Shared pieces of the training tests: a micro config (32 px) and its compiled programs, cached per process so
every test module reuses one compile per mesh."""

from __future__ import annotations

import functools
import os
import pathlib

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


def subprocess_env(**extra: str) -> dict:
    """Environment of a training subprocess: same device count and compilation cache as the test session."""
    env = dict(os.environ)
    env.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    env.update(
        {
            "JAX_COMPILATION_CACHE_DIR": str(REPO / ".jax_cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
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
