"""The official-name table: exact key sets/shapes, parameter counts, loading errors, round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mat_jax.models import MATConfig
from mat_jax.weights.layout import (
    CheckpointLayoutError,
    build_table,
    official_to_variables,
    variables_to_official,
)


@pytest.fixture(
    scope="module",
    params=[(128, "G"), (256, "G"), (512, "G"), (128, "D"), (256, "D"), (512, "D")],
    ids=lambda p: f"{p[1]}{p[0]}",
)
def table_and_keys(request, golden_dir):
    res, net = request.param
    keys = json.loads((golden_dir / f"keys_{net}_{res}.json").read_text())
    return res, net, build_table(MATConfig(resolution=res), net), keys


def test_table_matches_official_keys(table_and_keys):
    _, _, table, keys = table_and_keys
    official = {e["name"]: tuple(e["shape"]) for e in keys["entries"]}
    mine = {e.official: e.shape for e in table}
    assert sorted(set(official) - set(mine)) == []
    assert sorted(set(mine) - set(official)) == []
    assert {k: v for k, v in mine.items() if official[k] != v} == {}
    kinds = {e["name"]: e["kind"] for e in keys["entries"]}
    for e in table:  # parameters <-> 'params', buffers <-> 'buffers' or recomputed constants
        assert (kinds[e.official] == "parameter") == (e.collection == "params"), e.official


def test_parameter_counts_per_submodule(table_and_keys):
    """Every count the official key list reports (total and per submodule, 3 name levels) matches."""
    _, _, table, keys = table_and_keys
    for prefix, want in keys["param_counts"].items():
        got = sum(
            int(np.prod(e.shape))
            for e in table
            if e.collection == "params"
            and (prefix == "<total>" or e.official == prefix or e.official.startswith(prefix + "."))
        )
        assert got == want, f"{prefix}: {got} != official {want}"


def test_round_trip_bit_exact_and_constants_checked(golden_dir):
    from golden_utils import load_make_params

    mp = load_make_params(golden_dir)
    cfg = MATConfig(resolution=256)
    for net in ("G", "D"):
        sd = mp.make_params(golden_dir / f"keys_{net}_256.json")
        back = variables_to_official(official_to_variables(sd, cfg, net), cfg, net)
        assert list(back) == list(sd) or set(back) == set(sd)
        for k, v in sd.items():
            assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
            np.testing.assert_array_equal(back[k], v, err_msg=k)


def test_load_errors_name_every_bad_key(golden_dir):
    from golden_utils import load_make_params

    mp = load_make_params(golden_dir)
    cfg = MATConfig(resolution=256)
    sd = dict(mp.make_params(golden_dir / "keys_D_256.json"))
    del sd["fc0.bias"]
    sd["fc9.weight"] = np.zeros(3, np.float32)
    sd["Dis.1.conv0.weight"] = np.zeros((1, 2, 3, 3), np.float32)
    sd["Dis.1.conv0.resample_filter"] = np.ones((4, 4), np.float32)
    with pytest.raises(CheckpointLayoutError) as e:
        official_to_variables(sd, cfg, "D", source="my.safetensors")
    msg = str(e.value)
    for needle in (
        "my.safetensors",
        "missing",
        "fc0.bias",
        "unexpected",
        "fc9.weight",
        "mis-shaped",
        "Dis.1.conv0.weight",
        "[128, 128, 3, 3]",
        "[1, 2, 3, 3]",
        "Dis.1.conv0.resample_filter",
    ):
        assert needle in msg, needle
    # A generator at the wrong resolution: every offending key is reported, not just the first.
    g512 = mp.make_params(golden_dir / "keys_G_512.json")
    with pytest.raises(CheckpointLayoutError, match="unexpected: .*Dec_512x512"):
        official_to_variables(g512, cfg, "G")


def test_unbuildable_resolutions_raise():
    with pytest.raises(ValueError, match="power of two"):
        MATConfig(resolution=300)
    with pytest.raises(ValueError, match="stage1_token_res"):
        MATConfig(resolution=64)  # official token map is 64x64: needs >= 128
    with pytest.raises(ValueError, match="unknown model config"):
        MATConfig.from_dict({"resolution": 256, "windowsize": 8})
