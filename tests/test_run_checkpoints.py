"""A trained model leaves the training loop: `inpaint`, `convert`, `demo` and `load_inpainter` read a training run
(its workdir, checkpoints/ or a step directory), and the exports load into PyTorch strictly."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest
from golden_utils import assert_close
from PIL import Image
from train_helpers import micro_config, tree_equal

from mat_jax import cli
from mat_jax.api import load_inpainter
from mat_jax.config import model_config
from mat_jax.convert.errors import ConversionError
from mat_jax.convert.formats import model_config_sidecar, read_checkpoint
from mat_jax.inference import Inpainter
from mat_jax.models import MATConfig
from mat_jax.train import checkpoint, loop, nets_io, programs, run_dir, sharding

pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (simulated) devices, see conftest.py")


def _full_state(workdir, step):
    """The whole train state of a checkpoint, restored the way the loop resumes (an independent reader)."""
    config = micro_config()
    mesh = sharding.make_mesh(1, None)
    progs = programs.build(loop.recipe_from_config(config, mesh), mesh, int(config.mesh.fsdp_min_size))
    ckpt = checkpoint.Checkpointer(workdir / "checkpoints", max_to_keep=10, async_save=False)
    state, _ = ckpt.restore(step, sharding.with_shardings(progs.abstract_state, progs.state_shardings), None)
    ckpt.close()
    return jax.tree.map(np.asarray, jax.device_get(state))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The micro config trained 2 steps with a checkpoint after each: (workdir, {step: full state})."""
    wd = tmp_path_factory.mktemp("run")
    config = micro_config("train.total_steps=2", "checkpoint.every_steps=1", "logging.grid_size=0")
    assert loop.train(config, wd)["step"] == 2
    return wd, {s: _full_state(wd, s) for s in (1, 2)}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / "img.png")
    known = np.full((32, 32), 255, np.uint8)
    known[8:24, 6:20] = 0
    Image.fromarray(known).save(d / "mask.png")
    return d / "img.png", d / "mask.png"


def _batch():
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    masks = np.ones((2, 32, 32, 1), np.float32)
    masks[:, 8:24, 4:28] = 0
    return images, masks


def test_run_names_resolve_to_the_latest_complete_step(run):
    wd, _ = run
    assert run_dir.locate(wd).step == 2
    assert run_dir.locate(wd / "checkpoints").step == 2
    assert run_dir.locate(wd / "checkpoints" / "1").step == 1
    assert run_dir.locate(wd, step=1).step == 1
    assert run_dir.model_config(wd) == model_config(micro_config())
    assert MATConfig.from_dict(json.loads((wd / run_dir.MODEL_CONFIG_FILE).read_text())) == model_config(micro_config())


def test_load_inpainter_equals_the_runs_own_g_ema(run):
    wd, states = run
    images, masks = _batch()
    for step in (1, 2):
        loaded = load_inpainter(wd, step=None if step == 2 else step)
        assert tree_equal(loaded.variables, states[step]["ema"])
        assert "step %d" % step in loaded.source and "G_ema" in loaded.source
        own = Inpainter(model_config(micro_config()), states[step]["ema"])
        np.testing.assert_array_equal(loaded(images, masks, seed=3)[0], own(images, masks, seed=3)[0])
    g = load_inpainter(wd / "checkpoints" / "1", net="G")
    assert tree_equal(g.variables, states[1]["g"])
    assert not tree_equal(states[1]["ema"], states[2]["ema"])  # --step really picks another checkpoint


def test_convert_run_to_safetensors_is_bit_identical(run, tmp_path, pair):
    wd, states = run
    dst = tmp_path / "g.safetensors"
    assert cli.main(["convert", str(wd), str(dst)]) == 0
    assert MATConfig.from_dict(json.loads(open(model_config_sidecar(dst)).read())) == model_config(micro_config())
    back = nets_io.load_nets(dst, ("G_ema",))
    assert back.cfg == model_config(micro_config()) and tree_equal(back.nets["G_ema"], states[2]["ema"])
    both = tmp_path / "gd.npz"
    assert (
        cli.main(["convert", str(wd / "checkpoints" / "1"), str(both), "--net", "G_ema,D", "--dtype", "float16"]) == 0
    )
    half = nets_io.load_nets(both, ("G_ema", "D"))
    for name, key in (("G_ema", "ema"), ("D", "d")):
        for a, b in zip(jax.tree.leaves(half.nets[name]), jax.tree.leaves(states[1][key]), strict=True):
            np.testing.assert_array_equal(a, b.astype(np.float16).astype(np.float32))
    # The inpaint command gives the same pixels from the run and from its export.
    image, mask = pair
    outs = []
    for src in (wd, dst):
        out = tmp_path / f"out_{len(outs)}.png"
        assert (
            cli.main(
                [
                    "inpaint",
                    "--checkpoint",
                    str(src),
                    "--image",
                    str(image),
                    "--mask",
                    str(mask),
                    "--output",
                    str(out),
                    "--noise-mode",
                    "none",
                ]
            )
            == 0
        )
        outs.append(np.asarray(Image.open(out)))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], np.asarray(Image.open(image)))  # the hole was filled


def test_incomplete_and_missing_steps(run, tmp_path, capsys):
    wd, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(wd / "checkpoints", copy / "checkpoints")
    shutil.copy(wd / run_dir.MODEL_CONFIG_FILE, copy)
    partial = copy / "checkpoints" / "3"  # a save cut short: no state metadata
    shutil.copytree(copy / "checkpoints" / "2", partial)
    (partial / "state" / "_METADATA").unlink()
    shutil.copytree(copy / "checkpoints" / "2", copy / "checkpoints" / "4.orbax-checkpoint-tmp-1700000000")
    assert run_dir.complete_steps(copy) == [1, 2]
    assert run_dir.locate(copy).step == 2
    with pytest.raises(ConversionError, match="step 3 is incomplete.*complete steps: 1, 2"):
        run_dir.locate(copy, step=3)
    with pytest.raises(ConversionError, match="step 9 does not exist"):
        load_inpainter(copy, step=9)
    for s in ("1", "2", "3"):
        shutil.rmtree(copy / "checkpoints" / s)
    assert cli.main(["convert", str(copy), str(tmp_path / "x.pt")]) == 1
    assert "has no complete checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_demo_command_uses_the_run(run, tmp_path, capsys):
    wd, _ = run
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "--checkpoint", str(wd), "--output", str(out)]) == 0
    assert "G_ema of" in capsys.readouterr().out
    assert Image.open(out).size[0] > 32 * 5


def test_exported_pt_loads_strictly_into_the_torch_twin(run, tmp_path):
    torch = pytest.importorskip("torch")
    from mat_jax.torch_twin import Discriminator as TwinD
    from mat_jax.torch_twin import Generator as TwinG

    wd, states = run
    cfg = model_config(micro_config())
    dst = tmp_path / "gd.pt"
    assert cli.main(["convert", str(wd), str(dst), "--net", "G_ema,D"]) == 0
    sd = torch.load(dst, weights_only=True)
    twin_g, twin_d = TwinG.from_config(cfg).eval(), TwinD.from_config(cfg).eval()
    twin_g.load_state_dict({k[len("G_ema.") :]: v for k, v in sd.items() if k.startswith("G_ema.")}, strict=True)
    twin_d.load_state_dict({k[len("D.") :]: v for k, v in sd.items() if k.startswith("D.")}, strict=True)
    images, masks = _batch()
    z = np.random.default_rng(2).standard_normal((2, cfg.z_dim)).astype(np.float32)
    want, want1 = Inpainter(cfg, states[2]["ema"])(images, masks, z, smm_maps="ones", noise_mode="none")
    nchw = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    smm = twin_smm_ones(cfg, 2)
    with torch.no_grad():
        got, got1 = twin_g(
            nchw(images), nchw(masks), torch.from_numpy(z), noise_mode="none", return_stg1=True, smm_maps=smm
        )
    assert_close("final", want, got.numpy().transpose(0, 2, 3, 1))
    assert_close("stage 1", want1, got1.numpy().transpose(0, 2, 3, 1))


def twin_smm_ones(cfg, batch):
    """All-ones style-manipulation maps in the twin's layout (stage 1 [B, L, dim], stage 2 [B, C, 16, 16])."""
    import torch

    from mat_jax.models.generator import smm_shapes

    (s1, s2) = smm_shapes(cfg, batch, (cfg.resolution, cfg.resolution))
    return torch.ones(s1), torch.ones((s2[0], s2[3], s2[1], s2[2]))


def test_official_architecture_run_exports_an_official_state_dict(tmp_path, golden_dir):
    """At 256 with the official architecture, G_ema and D of an initialised train state, saved as a run, export
    exactly the official key lists and shapes (and no model-config sidecar)."""
    torch = pytest.importorskip("torch")
    from mat_jax.torch_twin import Generator as TwinG
    from mat_jax.train import steps

    cfg = MATConfig(resolution=256)
    recipe = steps.Recipe(model=cfg, global_batch=1)
    # The train state's exact tree (eval_shape of init_state), filled with random values: compiling the 256 init
    # would cost ~40 s and test nothing more about the layout.
    abstract = jax.eval_shape(lambda k: steps.init_state(recipe, k), jax.random.key(0))
    rng = np.random.default_rng(0)
    state = jax.tree.map(
        lambda a: rng.standard_normal(a.shape).astype(a.dtype) if a.dtype == np.float32 else np.zeros(a.shape, a.dtype),
        abstract,
    )
    wd = tmp_path / "run256"
    (wd / "checkpoints").mkdir(parents=True)
    run_dir.write_model_config(wd, cfg)
    ckpt = checkpoint.Checkpointer(wd / "checkpoints", async_save=False)
    ckpt.save(0, state, None, {"step": 0})
    ckpt.close()
    dst = tmp_path / "gd.pt"
    assert cli.main(["convert", str(wd), str(dst), "--net", "G_ema,D"]) == 0
    assert not (tmp_path / "gd.pt.model_config.json").exists()
    sd = torch.load(dst, weights_only=True)
    for net, prefix in (("G", "G_ema."), ("D", "D.")):
        golden = json.loads((golden_dir / f"keys_{net}_256.json").read_text())["entries"]
        got = [(k[len(prefix) :], list(v.shape)) for k, v in sd.items() if k.startswith(prefix)]
        assert got == [(e["name"], e["shape"]) for e in golden]
    TwinG(img_resolution=256).load_state_dict({k[6:]: v for k, v in sd.items() if k.startswith("G_ema.")}, strict=True)
    ckpt_g = read_checkpoint(dst, nets=("G_ema",))
    assert ckpt_g.resolution == 256
    assert tree_equal(nets_io.load_nets(dst, ("G_ema",)).nets["G_ema"], state["ema"])
