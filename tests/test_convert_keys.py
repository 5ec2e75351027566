"""The computed official layout equals the golden key lists, and layout inference reads it back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mat_jax.convert.errors import ConversionError
from mat_jax.convert.nets import infer_layout
from mat_jax.models.config import MATConfig
from mat_jax.models.constants import resample_filter, shifted_window_mask
from mat_jax.weights.layout import build_table, official_table


@pytest.mark.parametrize("net", ["G", "D"])
@pytest.mark.parametrize("res", [128, 256, 512])
def test_entries_equal_golden(golden_dir, net, res):
    gold = json.loads((golden_dir / f"keys_{net}_{res}.json").read_text())
    want = [(e["name"], tuple(e["shape"]), e["kind"]) for e in gold["entries"]]
    table = build_table(MATConfig(resolution=res), net)
    got = [(e.official, e.shape, e.kind) for e in table]
    assert got == want  # names, order, shapes, parameter/buffer
    n_params = sum(int(np.prod(e.shape)) for e in table if e.kind == "parameter")
    assert n_params == gold["param_counts"]["<total>"]


@pytest.mark.parametrize("net", ["G", "D"])
@pytest.mark.parametrize("res", [128, 256, 512])
def test_infer_layout_round_trip(net, res):
    state = {e.official: np.zeros(e.shape, np.float32) for e in build_table(MATConfig(resolution=res), net)}
    assert infer_layout(state, "x") == (net, res)


def test_unsupported_resolution():
    with pytest.raises(ValueError, match="1024"):
        official_table("G", 1024)


def test_fits_no_layout_says_what_was_found():
    with pytest.raises(ConversionError, match=r"f\.bin: fits no known MAT layout.*2 keys.*encoder\.\* \(2\)"):
        infer_layout({"encoder.weight": np.zeros(1), "encoder.bias": np.zeros(1)}, "f.bin")


def test_buffer_values_match_golden_rule(golden_dir):
    import importlib.util

    spec = importlib.util.spec_from_file_location("golden_make_params", golden_dir / "make_params.py")
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)
    np.testing.assert_array_equal(resample_filter(), mp.RESAMPLE_FILTER)
    np.testing.assert_array_equal(shifted_window_mask(64, 64, 8, 4), mp.shifted_window_mask(64, 64))
    np.testing.assert_array_equal(shifted_window_mask(32, 32, 16, 8), mp.shifted_window_mask(4, 256))
