"""Helpers for comparing against ../shared/golden (official PyTorch outputs, NCHW)."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np


def load_make_params(golden_dir: pathlib.Path):
    spec = importlib.util.spec_from_file_location("mat_golden_make_params", golden_dir / "make_params.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def nhwc(a) -> np.ndarray:
    return np.asarray(a).transpose(0, 2, 3, 1)


def nchw(a) -> np.ndarray:
    return np.asarray(a).transpose(0, 3, 1, 2)


def errors(a, ref) -> tuple[float, float]:
    """(max |a - ref|, ||a - ref|| / ||ref||) in float64."""
    a = np.asarray(a, np.float64)
    ref = np.asarray(ref, np.float64)
    assert a.shape == ref.shape, (a.shape, ref.shape)
    return float(np.abs(a - ref).max()), float(np.linalg.norm(a - ref) / max(np.linalg.norm(ref), 1e-30))


# Tolerance (relative L2 / max-abs relative to max|ref|). The golden README measures the official
# float32 forward against float64 at <= 5.4e-6 rel-L2 and <= 4.4e-6 max-abs/max|ref| (1 vs 2 threads:
# ~1e-6). Our float32 forward uses a different (non-grouped) but mathematically identical op order,
# so its rounding differs at the same level; 5e-5 leaves a 10x margin yet catches any real bug
# (a wrong gain, index or layout gives errors of order 1e-2 .. 1).
REL_L2_TOL = 5e-5
MAX_REL_TOL = 5e-5


def assert_close(name: str, a, ref, rel_l2: float = REL_L2_TOL, max_rel: float = MAX_REL_TOL) -> None:
    err, rel = errors(a, ref)
    scale = float(np.abs(np.asarray(ref)).max()) or 1.0
    assert rel <= rel_l2 and err / scale <= max_rel, (
        f"{name}: rel-L2 {rel:.2e} (tol {rel_l2:.0e}), max-abs {err:.2e} = {err / scale:.2e} of max|ref| "
        f"(tol {max_rel:.0e})"
    )
