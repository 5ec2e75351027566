"""Class-conditional training (the official `--cond`): c_dim resolved from the data before any compile, a labelled
folder trains and checkpoints, the labels reach G's mapping and D, and inconsistent configs fail early."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from train_helpers import micro_config, random_batch

from mat_jax.data import pipeline
from mat_jax.models import Discriminator, Generator
from mat_jax.train import loop, programs


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """8 small PNGs in two class sub-folders (a = class 0, b = class 1)."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir()
        for j in range(4):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / cls / f"{j}.png")
    return root


def _labelled(folder, *more):
    return micro_config(
        "data.source='folder'", f"data.path='{folder}'", "data.labels='subfolders'", "mesh.num_devices=1", *more
    )


def _forbid_compile(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("programs.build must not be reached")

    monkeypatch.setattr(programs, "build", refuse)


def test_resolve_model_config(labelled_folder):
    data_cfg = pipeline.from_config(_labelled(labelled_folder).data)
    assert pipeline.num_classes(data_cfg) == 2
    assert loop.resolve_model_config(_labelled(labelled_folder), data_cfg).c_dim == 2
    assert loop.resolve_model_config(_labelled(labelled_folder, "model.c_dim=2"), data_cfg).c_dim == 2
    with pytest.raises(ValueError, match=r"model\.c_dim=5 .*num_classes=2"):
        loop.resolve_model_config(_labelled(labelled_folder, "model.c_dim=5"), data_cfg)
    plain = micro_config("model.c_dim=3")
    with pytest.raises(ValueError, match=r"model\.c_dim=3 but the data has no labels: set data\.labels="):
        loop.resolve_model_config(plain, pipeline.from_config(plain.data))
    assert loop.resolve_model_config(micro_config(), pipeline.from_config(micro_config().data)).c_dim == 0


def test_c_dim_without_labels_fails_before_compiling(tmp_path, monkeypatch):
    _forbid_compile(monkeypatch)
    with pytest.raises(ValueError, match=r"model\.c_dim=3 but the data has no labels"):
        loop.train(micro_config("model.c_dim=3"), tmp_path / "a")
    with pytest.raises(ValueError, match=r"model\.c_dim=3 .*num_classes=2"):
        loop.train(_labelled(_folder_for(tmp_path), "model.c_dim=3"), tmp_path / "b")
    assert not (tmp_path / "a" / "model_config.json").exists()


def _folder_for(tmp_path):
    root = tmp_path / "imgs"
    for cls in ("x", "y"):
        (root / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / cls / "0.png")
    return root


@pytest.fixture(scope="module")
def conditional_run(labelled_folder, tmp_path_factory):
    wd = tmp_path_factory.mktemp("cond_run")
    out = loop.train(_labelled(labelled_folder, "train.total_steps=2"), wd)
    assert out["status"] == "completed" and out["step"] == 2
    return wd


def test_conditional_run_trains_and_checkpoints(conditional_run):
    wd = conditional_run
    assert json.loads((wd / "model_config.json").read_text())["c_dim"] == 2
    assert "model.c_dim=2" in (wd / "train.log").read_text()
    rows = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(np.isfinite(r["G/total"]) and np.isfinite(r["D/total"]) for r in rows if "G/total" in r)
    assert (wd / "checkpoints").is_dir() and any((wd / "checkpoints").iterdir())
    assert (wd / "samples" / "grid_00000002.png").is_file()  # the sampler ran with the grid records' labels


def test_labels_reach_mapping_and_discriminator(conditional_run):
    from mat_jax.train.nets_io import load_nets

    loaded = load_nets(conditional_run, ("G_ema", "D"))
    cfg = loaded.cfg
    assert cfg.c_dim == 2
    g_vars = jax.tree.map(jnp.asarray, loaded.nets["G_ema"])
    d_vars = jax.tree.map(jnp.asarray, loaded.nets["D"])
    b = random_batch(2, cfg.resolution, seed=1)
    z = jax.random.normal(jax.random.key(0), (2, cfg.z_dim))
    c0 = jnp.asarray([[1.0, 0.0]] * 2)
    c1 = jnp.asarray([[0.0, 1.0]] * 2)

    def gen(c):
        final, _ = Generator(cfg).apply(
            g_vars, b["image"], b["mask"], z, c, noise_mode="const", rngs={"smm": jax.random.key(1)}
        )
        return np.asarray(final)

    def disc(c):
        return np.asarray(Discriminator(cfg).apply(d_vars, b["image"], b["mask"], b["image"], c)[0])

    assert not np.allclose(gen(c0), gen(c1))
    np.testing.assert_array_equal(gen(c0), gen(c0))
    assert not np.allclose(disc(c0), disc(c1))
    with pytest.raises(ValueError, match="conditional"):
        Generator(cfg).apply(g_vars, b["image"], b["mask"], z, noise_mode="const", rngs={"smm": jax.random.key(1)})


# ---------------------------------------------------------------------------------------------------------------
# Inference: Inpainter(c=...), one_hot, `mat-jax inpaint --label` / `mat-jax demo --label`


def test_one_hot():
    from mat_jax.inference import one_hot

    np.testing.assert_array_equal(one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(1, 2).dtype == np.float32 and one_hot(1, 2).shape == (1, 2)
    for bad in (3, -1):
        with pytest.raises(ValueError, match=rf"label {bad} is outside \[0, 3\)"):
            one_hot([0, bad], 3)
    with pytest.raises(ValueError, match="c_dim >= 1"):
        one_hot([0], 0)


@pytest.fixture(scope="module")
def conditional_inpainter(conditional_run):
    from mat_jax import inference
    from mat_jax.train.nets_io import load_nets

    loaded = load_nets(conditional_run, ("G_ema",))
    return inference.Inpainter(loaded.cfg, jax.tree.map(jnp.asarray, loaded.nets["G_ema"]))


def test_inpainter_needs_c(conditional_inpainter):
    from mat_jax import inference

    inp = conditional_inpainter
    b = random_batch(2, inp.cfg.resolution, seed=2)
    with pytest.raises(ValueError, match=r"class-conditional \(c_dim=2\): pass c"):
        inp(b["image"], b["mask"])
    with pytest.raises(ValueError, match=r"c must be \[B, c_dim\] = \[2, 2\], got \(2, 3\)"):
        inp(b["image"], b["mask"], c=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"c must be \[B, c_dim\]"):
        inp(b["image"], b["mask"], c=np.zeros((1, 2), np.float32))
    uncond = inference.Inpainter(inp.cfg.replace(c_dim=0), inp.variables)
    with pytest.raises(ValueError, match="c was given but this model is unconditional"):
        uncond(b["image"], b["mask"], c=inference.one_hot([0, 1], 2))
    f0, _ = inp(b["image"], b["mask"], c=inference.one_hot([0, 0], 2))
    f1, _ = inp(b["image"], b["mask"], c=inference.one_hot([1, 1], 2))
    assert f0.shape == (2, inp.cfg.resolution, inp.cfg.resolution, 3) and not np.allclose(f0, f1)


def test_inpaint_and_demo_cli_label(conditional_inpainter, tmp_path, capsys):
    from mat_jax import cli
    from mat_jax.convert.orbax_dir import save_variables

    inp = conditional_inpainter
    r = inp.cfg.resolution
    ckpt = tmp_path / "cond_ckpt"
    save_variables(ckpt, {"G_ema": jax.tree.map(np.asarray, inp.variables)}, inp.cfg)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (r, r, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    mask = np.full((r, r), 255, np.uint8)
    mask[r // 4 : 3 * r // 4, r // 4 : 3 * r // 4] = 0
    Image.fromarray(mask).save(tmp_path / "mask.png")
    base = [
        "inpaint",
        "--checkpoint",
        str(ckpt),
        "--image",
        str(tmp_path / "img.png"),
        "--mask",
        str(tmp_path / "mask.png"),
    ]
    assert cli.main([*base, "--output", str(tmp_path / "none.png")]) == 1
    assert "class-conditional (c_dim=2): pass --label N" in capsys.readouterr().err
    assert cli.main([*base, "--output", str(tmp_path / "bad.png"), "--label", "2"]) == 1
    assert "label 2 is outside [0, 2)" in capsys.readouterr().err
    outs = []
    for label in (0, 1):
        assert cli.main([*base, "--output", str(tmp_path / f"out{label}.png"), "--label", str(label)]) == 0
        outs.append(np.asarray(Image.open(tmp_path / f"out{label}.png")))
    assert outs[0].shape == (r, r, 3) and not np.array_equal(outs[0], outs[1])
    assert cli.main(["demo", "--checkpoint", str(ckpt), "--output", str(tmp_path / "demo.png")]) == 1
    assert "pass --label N" in capsys.readouterr().err
    assert cli.main(["demo", "--checkpoint", str(ckpt), "--label", "1", "--output", str(tmp_path / "demo.png")]) == 0
    assert (tmp_path / "demo.png").is_file()
    # an unconditional model refuses --label
    plain = tmp_path / "plain_ckpt"
    save_variables(plain, {"G_ema": jax.tree.map(np.asarray, inp.variables)}, inp.cfg.replace(c_dim=0))
    assert cli.main(["demo", "--checkpoint", str(plain), "--label", "0", "--output", str(tmp_path / "d2.png")]) == 1
    assert "unconditional (c_dim=0); drop --label" in capsys.readouterr().err
