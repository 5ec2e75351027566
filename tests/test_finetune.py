"""A released model enters the training loop: `init.checkpoint` loads G, D, G_ema (and w_avg) before step 0 of a
fresh run, from a stand-in official pickle or another run; a resumed run keeps its own weights; a mismatched
architecture is refused naming every key."""

from __future__ import annotations

import re
import shutil

import jax
import numpy as np
import pytest
from train_helpers import TINY, micro_config, tree_equal

from mat_jax.commands import train as train_cmd
from mat_jax.config import model_config
from mat_jax.convert.errors import ConversionError
from mat_jax.train import loop, programs, run_dir, sharding
from mat_jax.weights.layout import abstract_variables, build_table, official_to_variables, variables_to_official

torch = pytest.importorskip("torch")
from test_convert_pickle import _Root, write_official_pickle  # noqa: E402  (the official pickle layout writer)

pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (simulated) devices, see conftest.py")

BUFFERS = ("resample_filter", "noise_const", "w_avg", "attn_mask")
FRESH = ("train.total_steps=0", "train.total_kimg=0", "logging.grid_size=0")  # init, save step 0, stop


def _random_official(cfg, net: str, seed: int) -> dict:
    """Random official-layout weights of `net` for `cfg` (values the model never produced by itself)."""
    rng = np.random.default_rng(seed)
    variables = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(np.float32), abstract_variables(cfg, net))
    return variables_to_official(variables, cfg, net)


def _module(state: dict) -> torch.nn.Module:
    """An nn.Module tree whose state_dict() is `state` (official buffers registered as buffers)."""
    root = _Root()
    for name, value in state.items():
        *path, leaf = name.split(".")
        m = root
        for p in path:
            if p not in m._modules:
                m.add_module(p, _Root())
            m = m._modules[p]
        t = torch.from_numpy(np.array(value))
        if leaf in BUFFERS:
            m.register_buffer(leaf, t)
        else:
            m.register_parameter(leaf, torch.nn.Parameter(t))
    return root


@pytest.fixture(scope="module")
def pickles(tmp_path_factory):
    """Two stand-in official pickles (G, D, G_ema) of the micro architecture: A and B, different weights."""
    cfg = model_config(micro_config())
    out = {}
    for name, seed in (("A", 10), ("B", 20)):
        nets = {
            "G": _random_official(cfg, "G", seed),
            "D": _random_official(cfg, "D", seed + 1),
            "G_ema": _random_official(cfg, "G", seed + 2),
        }
        path = tmp_path_factory.mktemp("pkl") / f"network-{name}.pkl"
        write_official_pickle(path, {n: _module(s) for n, s in nets.items()})
        out[name] = (path, {n: official_to_variables(s, cfg, "D" if n == "D" else "G") for n, s in nets.items()})
    return out


def _nets(workdir, step=None):
    return run_dir.restore_nets(run_dir.locate(workdir, step), ("G", "G_ema", "D"))


@pytest.fixture(scope="module")
def finetuned(pickles, tmp_path_factory):
    """A fresh run initialised from pickle A and saved at step 0."""
    wd = tmp_path_factory.mktemp("ft")
    out = loop.train(micro_config(*FRESH, f"init.checkpoint={pickles['A'][0]}"), wd)
    assert out["step"] == 0
    return wd


def test_step0_equals_the_pickle_exactly(finetuned, pickles):
    _, want = pickles["A"]
    got = _nets(finetuned, 0)
    for net in ("G", "G_ema", "D"):
        assert tree_equal(got[net], want[net]), net
    w_avg = got["G"]["buffers"]["mapping"]["w_avg"]
    np.testing.assert_array_equal(w_avg, want["G"]["buffers"]["mapping"]["w_avg"])
    assert re.search(r"initialised G, D, G_ema of .*network-A\.pkl", (finetuned / "train.log").read_text())


def test_optimiser_states_start_fresh(finetuned):
    config = micro_config()
    mesh = sharding.make_mesh(1, None)
    progs = programs.build(loop.recipe_from_config(config, mesh), mesh, int(config.mesh.fsdp_min_size))
    from mat_jax.train.checkpoint import Checkpointer

    ckpt = Checkpointer(finetuned / "checkpoints", async_save=False)
    state, _ = ckpt.restore(0, sharding.with_shardings(progs.abstract_state, progs.state_shardings), None)
    ckpt.close()
    for key in ("g_opt", "d_opt"):
        assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(state[key])), key


def test_resumed_finetune_continues_from_its_own_checkpoint(finetuned, pickles, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(finetuned, resumed)
    # Re-running with another init source: the run's own step-0 checkpoint (= A) wins.
    assert (
        loop.train(
            micro_config("train.total_steps=1", "logging.grid_size=0", f"init.checkpoint={pickles['B'][0]}"), resumed
        )["step"]
        == 1
    )
    assert "is ignored: the run resumes from its own checkpoint" in (resumed / "train.log").read_text()
    straight = tmp_path / "straight"
    loop.train(
        micro_config("train.total_steps=1", "logging.grid_size=0", f"init.checkpoint={pickles['A'][0]}"), straight
    )
    got, want = _nets(resumed, 1), _nets(straight, 1)
    for net in ("G", "G_ema", "D"):
        assert tree_equal(got[net], want[net]), net
    # ... and another run's workdir is itself an init source.
    from_run = tmp_path / "from_run"
    loop.train(micro_config(*FRESH, f"init.checkpoint={straight}"), from_run)
    again = _nets(from_run, 0)
    for net in ("G", "G_ema", "D"):
        assert tree_equal(again[net], want[net]), net


def test_init_nets_selects_which_nets_load(pickles, tmp_path):
    path, want = pickles["A"]
    wd = tmp_path / "g_only"
    loop.train(micro_config(*FRESH, f"init.checkpoint={path}", "init.nets=('G',)"), wd)
    got = _nets(wd, 0)
    assert tree_equal(got["G"], want["G"]) and tree_equal(got["G_ema"], want["G"])  # G_ema starts as G
    config = micro_config()
    mesh = sharding.make_mesh(1, None)
    progs = programs.build(loop.recipe_from_config(config, mesh), mesh, int(config.mesh.fsdp_min_size))
    fresh_d = jax.tree.map(np.asarray, jax.device_get(progs.init(jax.random.key(int(config.seed)))["d"]))
    assert tree_equal(got["D"], fresh_d)  # D from scratch: the seed's own initialisation


def test_mismatched_architecture_lists_every_key(pickles, tmp_path):
    path, _ = pickles["A"]
    config = micro_config(*FRESH, f"init.checkpoint={path}", "model.stage1_dim=32")
    src, dst = model_config(micro_config()), model_config(config)
    old, new = ({e.official: e.shape for e in build_table(c, "G")} for c in (src, dst))
    assert set(old) == set(new)  # same names, other widths
    n_bad = sum(old[k] != new[k] for k in old)
    assert n_bad > 10
    with pytest.raises(ConversionError) as e:
        loop.train(config, tmp_path / "bad")
    msg = str(e.value)
    assert "init.checkpoint=" in msg and f"{n_bad} mis-shaped key(s)" in msg
    assert "synthesis.first_stage.conv_first.conv.weight: expected [32, 4, 3, 3], found [24, 4, 3, 3]" in msg
    assert not run_dir.complete_steps(tmp_path / "bad")  # nothing was trained or saved


def test_cli_flags_reach_the_init_section():
    argv = [
        "mat-jax train",
        "--config",
        str(TINY),
        "--workdir",
        "/tmp/x",
        "--config.init.checkpoint=/w/Places_512_FullData.pkl",
        "--config.init.nets=('G', 'G_ema')",
    ]
    _, config = train_cmd.parse(argv)
    assert config.init.checkpoint == "/w/Places_512_FullData.pkl" and tuple(config.init.nets) == ("G", "G_ema")
