"""mat_jax.runtime: the re-exec with glibc's huge-page malloc tunable."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from mat_jax import runtime

GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="glibc tunables exist on glibc Linux only")
def test_malloc_env_adds_tunable_once():
    env = runtime.malloc_env({"PATH": "/bin"})
    assert env["GLIBC_TUNABLES"] == runtime.TUNABLE and env["PATH"] == "/bin"
    kept = runtime.malloc_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert kept["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:" + runtime.TUNABLE
    assert runtime.malloc_env(env) is None  # already set: no second exec
    assert runtime.malloc_env({runtime.OPT_OUT: "0"}) is None


@pytest.mark.skipif(not GLIBC, reason="glibc tunables exist on glibc Linux only")
def test_reexec_runs_the_same_command_line_with_the_tunable():
    code = (
        "import os, sys; from mat_jax import runtime; print('start', os.environ.get('GLIBC_TUNABLES'), "
        "sys.argv[1:], flush=True); runtime.reexec_with_hugepage_malloc(); print('done')"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", runtime.OPT_OUT)}
    out = subprocess.run([sys.executable, "-c", code, "a", "b"], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["start None ['a', 'b']", f"start {runtime.TUNABLE} ['a', 'b']", "done"]
