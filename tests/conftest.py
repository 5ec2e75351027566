"""Test-session setup shared by every test module.

Order matters: XLA flags and absl flags must be set before jax / grain initialise.
"""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags

import jax  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
jax.config.update("jax_compilation_cache_dir", str(REPO / ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

SHARED = pathlib.Path(os.environ.get("MAT_JAX_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden"


@pytest.fixture(scope="session")
def golden_dir():
    """Path of ../shared/golden; skips (with the reason) when it is absent."""
    if not (GOLDEN / "make_params.py").is_file():
        pytest.skip(f"golden data not found at {GOLDEN} (set MAT_JAX_SHARED to the shared/ folder)")
    return GOLDEN
