"""Test-session setup shared by every test module.

Order matters: XLA flags and absl flags must be set before jax / grain initialise.
"""

import gc
import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags

import jax  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
CACHE_MAX_BYTES = 8 * 2**30
jax.config.update("jax_compilation_cache_dir", str(REPO / ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
# Test workers (pytest -n) and the training subprocesses share this cache. Without a size limit jax writes an entry
# with a plain write_bytes and reads it unlocked, so a process can read another's half-written executable; with one,
# every read and write holds the cache's file lock (filelock). The suite's cache is ~0.1 GB.
jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)

SHARED = pathlib.Path(os.environ.get("MAT_JAX_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden"


@pytest.fixture(scope="session")
def golden_dir():
    """Path of ../shared/golden; skips (with the reason) when it is absent."""
    if not (GOLDEN / "make_params.py").is_file():
        pytest.skip(f"golden data not found at {GOLDEN} (set MAT_JAX_SHARED to the shared/ folder)")
    return GOLDEN


def _release() -> None:
    jax.clear_caches()
    gc.collect()


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs():
    """Drop every compiled executable once a test module is done (its module fixtures are torn down first).

    XLA:CPU maps each executable's machine code into its own memory regions; a session that keeps all of them
    alive (the jit caches do) climbs past the kernel's ``vm.max_map_count`` (65530 by default) and aborts inside
    a later compile. Recompiling in a later module is a hit in the persistent cache.
    """
    yield
    _release()


@pytest.fixture
def release_compiled_programs():
    """The same after one test, for tests that each compile a model of their own (a module of them would run out of
    memory maps before its end)."""
    yield
    _release()
