"""The numpy layout table equals the Flax variable tree (`jax.eval_shape` of `init`) for every architecture the
JAX model builds: the official networks at 128/256/512 and non-official configurations (tiny, conditional,
no style manipulation, full attention, pre-LN residual blocks, no shifted windows, wider mbstd, single stage, no
stage-1 D branch, ...)."""

from __future__ import annotations

import json
import pathlib

import pytest

from mat_jax.config import load_config, model_config
from mat_jax.models import MATConfig
from mat_jax.weights.layout import abstract_variables, build_table


def _flax_leaves(tree, prefix=()):
    for k, v in tree.items():
        if hasattr(v, "items"):
            yield from _flax_leaves(v, prefix + (k,))
        else:
            yield prefix + (k,), tuple(v.shape)


def _tiny() -> MATConfig:
    return model_config(load_config(pathlib.Path(__file__).resolve().parents[1] / "configs" / "tiny.py"))


_SMALL = dict(
    resolution=128,
    z_dim=64,
    w_dim=64,
    mapping_layers=2,
    channel_base=4096,
    channel_max=64,
    stage1_dim=24,
    stage1_heads=2,
    stage1_token_res=32,
    stage1_depths=(1, 2, 1, 2, 1),
)
CONFIGS = {
    "G128": ("G", lambda: MATConfig(resolution=128)),
    "G256": ("G", lambda: MATConfig(resolution=256)),
    "G512": ("G", lambda: MATConfig(resolution=512)),
    "D128": ("D", lambda: MATConfig(resolution=128)),
    "D256": ("D", lambda: MATConfig(resolution=256)),
    "D512": ("D", lambda: MATConfig(resolution=512)),
    "G-tiny": ("G", _tiny),
    "D-tiny": ("D", _tiny),
    "G-c3": ("G", lambda: _tiny().replace(c_dim=3)),
    "D-c3": ("D", lambda: _tiny().replace(c_dim=3)),
    "G-c3-nonoise-z0": ("G", lambda: MATConfig(**_SMALL, c_dim=3).replace(z_dim=0)),
    "G-no-smm": ("G", lambda: _tiny().replace(style_manipulation=False)),
    "G-full": ("G", lambda: _tiny().replace(attention="full")),
    "G-prenorm": ("G", lambda: _tiny().replace(block="prenorm_residual", attention="window", mask_update="none")),
    "G-unshifted": ("G", lambda: _tiny().replace(shifted_windows=False)),
    "G-linear-patch": ("G", lambda: _tiny().replace(stage1_embed="linear_patch")),
    "G-single-stage": ("G", lambda: _tiny().replace(stages=1, d_stage1=False)),
    "G-single-stage-c3-no-smm": (
        "G",
        lambda: _tiny().replace(stages=1, d_stage1=False, c_dim=3, style_manipulation=False),
    ),
    "D-no-stage1": ("D", lambda: _tiny().replace(d_stage1=False)),
    "D-no-stage1-c3": ("D", lambda: _tiny().replace(d_stage1=False, c_dim=3)),
    "G-small": ("G", lambda: MATConfig(**_SMALL, stage1_mlp_ratio=1.5, stage1_masked_layers=1, img_channels=1)),
    "D-mbstd2": ("D", lambda: MATConfig(**_SMALL, mbstd_num_channels=2, img_channels=1)),
    "D-mbstd0": ("D", lambda: _tiny().replace(mbstd_num_channels=0)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_table_equals_flax_tree(name):
    net, make = CONFIGS[name]
    cfg = make()
    table = build_table(cfg, net)
    variables = abstract_variables(cfg, net)
    flax = {
        (coll, path): shape for coll in ("params", "buffers") for path, shape in _flax_leaves(variables.get(coll, {}))
    }
    mine = {(e.collection, e.path): e.flax_shape for e in table if e.collection != "constant"}
    assert sorted(set(flax) - set(mine)) == []
    assert sorted(set(mine) - set(flax)) == []
    assert {k: v for k, v in mine.items() if flax[k] != v} == {}
    kinds = {e.collection: e.kind for e in table}
    assert kinds.get("params", "parameter") == "parameter" and kinds.get("buffers", "buffer") == "buffer"
    consts = [e for e in table if e.collection == "constant"]
    if cfg.attention == "full" or not cfg.shifted_windows:
        assert not any(e.path[-1] == "attn_mask" for e in consts)


@pytest.mark.parametrize("net", ["G", "D"])
@pytest.mark.parametrize("res", [128, 256, 512])
def test_table_is_in_golden_order(golden_dir, net, res):
    gold = json.loads((golden_dir / f"keys_{net}_{res}.json").read_text())
    want = [(e["name"], tuple(e["shape"]), e["kind"]) for e in gold["entries"]]
    assert [(e.official, e.shape, e.kind) for e in build_table(MATConfig(resolution=res), net)] == want
