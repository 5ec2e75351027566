"""The train loop in-process on 8 simulated devices: exact resume (state, optimiser, EMA, data stream),
restore onto 1 device, non-finite handling, config checks, CLI parsing."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest
from train_helpers import micro_config, tree_equal

from mat_jax import cli
from mat_jax.commands import train as train_cmd
from mat_jax.data import pipeline
from mat_jax.train import checkpoint, loop, programs, sharding

pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (simulated) devices, see conftest.py")


def _restore(workdir, step=None, devices=None):
    """(state as numpy, meta, next data batch) of a run's checkpoint, restored onto `devices` (default all)."""
    config = micro_config()
    mesh = sharding.make_mesh(1, devices)
    recipe = loop.recipe_from_config(config, mesh)
    progs = programs.build(recipe, mesh, int(config.mesh.fsdp_min_size))
    ckpt = checkpoint.Checkpointer(workdir / "checkpoints", max_to_keep=10, async_save=False)
    step = ckpt.latest_step() if step is None else step
    it, _ = pipeline.make_train_iterator(config.data, seed=int(config.seed), global_batch_size=recipe.global_batch)
    state, meta = ckpt.restore(step, sharding.with_shardings(progs.abstract_state, progs.state_shardings), it)
    ckpt.close()
    return jax.tree.map(np.asarray, jax.device_get(state)), meta, next(it)


def _rows(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """4 uninterrupted iterations (checkpoints at 2 and 4)."""
    wd = tmp_path_factory.mktemp("straight")
    out = loop.train(micro_config("train.total_steps=4"), wd)
    assert out == {"status": "completed", "step": 4, "workdir": str(wd)}
    return wd


def test_exact_resume_equals_uninterrupted(straight_run, tmp_path):
    wd = tmp_path / "resumed"
    assert loop.train(micro_config("train.total_steps=2"), wd)["step"] == 2
    assert loop.train(micro_config("train.total_steps=4"), wd)["step"] == 4
    log_text = (wd / "train.log").read_text()
    assert "starting fresh at step 0" in log_text and "resuming from checkpoint step 2" in log_text
    a, meta_a, next_a = _restore(straight_run)
    b, meta_b, next_b = _restore(wd)
    assert int(a["step"]) == int(b["step"]) == 4 and meta_a["data_batches"] == meta_b["data_batches"] == 4
    for key in ("g", "d", "ema", "g_opt", "d_opt", "rng", "skipped"):
        assert tree_equal(a[key], b[key]), key  # bit-identical: params, Adam moments, EMA, buffers (w_avg)
    np.testing.assert_array_equal(next_a["image"], next_b["image"])  # the data stream continues identically
    np.testing.assert_array_equal(next_a["mask"], next_b["mask"])
    rows_a, rows_b = _rows(straight_run), _rows(wd)
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4]
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert ra["G/total"] == rb["G/total"] and ra["D/total"] == rb["D/total"]
    assert (straight_run / "samples" / "grid_00000004.png").is_file()
    assert json.loads((wd / "config.json").read_text())["train"]["total_steps"] == 4


def test_restore_onto_one_device_and_continue(straight_run, tmp_path):
    a8, _, _ = _restore(straight_run)
    a1, _, _ = _restore(straight_run, devices=jax.devices()[:1])
    assert tree_equal(a8, a1)
    wd = tmp_path / "one_device"
    shutil.copytree(straight_run / "checkpoints", wd / "checkpoints")
    out = loop.train(micro_config("train.total_steps=5", "mesh.num_devices=1"), wd)
    assert out["step"] == 5
    assert (
        "resuming from checkpoint step 4 (0.032 kimg, saved by 1 process(es) on 8 device(s))"
        in (wd / "train.log").read_text()
    )


def test_nonfinite_skips_then_stops_with_last_checkpoint_intact(tmp_path):
    wd = tmp_path / "nan"
    config = micro_config("train.total_steps=8", "train.max_consecutive_nonfinite=3")

    def poison(step, batch):  # one bad batch at iteration 1, then a run of bad ones from iteration 3
        if step == 1 or step >= 3:
            return {**batch, "image": np.full_like(batch["image"], np.nan)}
        return batch

    with pytest.raises(loop.NonFiniteLossError, match=r"3 consecutive iterations \(3..5\).*Last checkpoint: step 4"):
        loop.train(config, wd, batch_transform=poison)
    rows = _rows(wd)
    finite = {r["step"]: r["finite"] for r in rows if "finite" in r}
    assert finite == {1: 1.0, 2: 0.0, 3: 1.0, 4: 0.0, 5: 0.0, 6: 0.0}
    assert "non-finite loss at iteration 1 (update skipped, 1 in a row)" in (wd / "train.log").read_text()
    s2, _, _ = _restore(wd, step=2)
    s4, meta4, _ = _restore(wd, step=4)
    assert int(s4["skipped"]) == 2 and meta4["data_batches"] == 4
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(s4["g"]) + jax.tree.leaves(s4["d"]))
    # iteration 3 was skipped: the step-4 checkpoint holds the parameters after iteration 2 (= step-3 state)
    assert not tree_equal(s2["g"], s4["g"])
    out = loop.train(config, wd)  # resumes from the intact checkpoint and finishes with clean data
    assert out == {"status": "completed", "step": 8, "workdir": str(wd)}


def test_config_errors_before_any_step(tmp_path):
    with pytest.raises(ValueError, match="loss.vgg_weights"):
        loop.train(micro_config("loss.pcp_ratio=0.1"), tmp_path / "a")
    with pytest.raises(ValueError, match="global_batch_size=6 is not divisible by the 8 devices"):
        loop.train(micro_config("train.global_batch_size=6"), tmp_path / "b")
    with pytest.raises(ValueError, match="data.resolution=64 != model.resolution=32"):
        loop.train(micro_config("data.resolution=64"), tmp_path / "c")


def test_cli_parsing(capsys, tmp_path):
    import argparse

    parser = argparse.ArgumentParser(prog="mat-jax")
    train_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--config", "configs/tiny.py", "--workdir", "w", "--config.seed=3"])
    assert args.argv == ["--config", "configs/tiny.py", "--workdir", "w", "--config.seed=3"]
    assert cli.main(["train", "--help"]) == 0
    assert "--config.section.key=value" in capsys.readouterr().out
    assert cli.main(["train", "--config", "configs/tiny.py"]) == 2
    assert "--workdir are required" in capsys.readouterr().err
    assert cli.main(["train", "--config", "configs/tiny.py", "--workdir", str(tmp_path), "--config.train.nope=1"]) == 2
