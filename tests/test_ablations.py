"""configs/ablations/: every variant is a few lines over the official recipe, loads, builds and runs a generator
forward at micro size (its differences from configs/places512.py applied to the micro config of train_helpers),
traces a whole training iteration, and trains a step and checkpoints (one variant in the fast suite, all under
-m slow); impossible combinations fail before anything compiles, naming the fields. The single-stage /
no-stage-1-D switches: output = the stage-1 composite, no stage-2 or stage-1-branch params, the main D branch and R1
term unchanged."""

from __future__ import annotations

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import REPO, micro_config, tree_equal

from mat_jax.config import ConfigError, as_plain, differences, load_config, model_config, override_of
from mat_jax.models import Generator
from mat_jax.train import loop, run_dir

BASE = REPO / "configs" / "places512.py"
VARIANTS = sorted(p for p in (REPO / "configs" / "ablations").glob("*.py") if "get_config" in p.read_text())


def _variant_overrides(path: pathlib.Path) -> list[str]:
    diff = differences(as_plain(load_config(path)), as_plain(load_config(BASE)))
    return [override_of(k, v) for k, (_, v) in diff.items()]


@functools.lru_cache(maxsize=None)
def _forward(cfg):
    @jax.jit
    def fwd(images, masks, z):
        keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
        (final, stage1), _ = Generator(cfg).init_with_output(keys, images, masks, z)
        return final, stage1

    return fwd


def test_there_are_variants_and_each_documents_itself():
    assert len(VARIANTS) >= 12
    for path in VARIANTS:
        text = path.read_text()
        assert text.startswith('"""Ablation: '), path.name
        assert len(text.splitlines()) < 40, f"{path.name} is more than a few lines over the base"


def _micro_inputs(cfg):
    r = cfg.resolution
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.uniform(-1, 1, (1, r, r, 3)), jnp.float32)
    masks = jnp.ones((1, r, r, 1)).at[:, 8:24, 8:24].set(0.0)
    return images, masks, jnp.asarray(rng.standard_normal((1, cfg.z_dim)), jnp.float32)


@pytest.mark.slow
@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_variant_forward_runs_at_micro_size(path, _release_programs):
    cfg = _checked_variant(path)
    if cfg is None:
        return
    images, masks, z = _micro_inputs(cfg)
    final, stage1 = _forward(cfg)(images, masks, z)
    assert final.shape == stage1.shape == (1, cfg.resolution, cfg.resolution, 3)
    assert bool(jnp.all(jnp.isfinite(final)))
    np.testing.assert_array_equal(np.asarray(final)[:, :8], np.asarray(images)[:, :8])  # known pixels kept


@pytest.fixture
def _release_programs(release_compiled_programs):
    """Each slow test below compiles a model of its own: drop it when the test ends (conftest.py says why)."""
    yield
    _forward.cache_clear()


def _checked_config(path):
    """(micro config, its MATConfig, whether the variant changes the model) of a variant, after checking it is one
    design choice over the base recipe."""
    overrides = _variant_overrides(path)
    assert 1 <= len(overrides) <= 2, overrides  # a variant is one design choice over the base recipe
    config = micro_config(*overrides)
    for item in overrides:  # the change survives on top of the micro model
        key, _, value = item.partition("=")
        section, name = key.split(".")
        got = config[section][name]
        assert override_of(key, list(got) if isinstance(got, tuple) else got) == item
    data_cfg, cfg = loop.check_config(config)
    assert cfg == model_config(config) and data_cfg.resolution == 32
    return config, cfg, any(o.startswith("model.") for o in overrides)


def _checked_variant(path):
    """The micro model config of a variant (checked); None for a loss / data variant (its generator is the micro
    one)."""
    _, cfg, changes_model = _checked_config(path)
    return cfg if changes_model else None


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_variant_changes_one_design_choice_and_traces_a_whole_training_step(path):
    """Every variant is one design choice over the base recipe, and its training iteration (Gmain + Dmain + EMA, and
    the lazy R1 step) traces at micro size: its networks, losses, gradients and Adam updates are built
    (jax.eval_shape, nothing compiles) and the new state has the state's own structure. The compiled forward of every
    variant is the slow test above; every variant trains a step in the test after this one (one in the fast suite)."""
    from mat_jax.train import sharding, steps

    config, cfg, _ = _checked_config(path)
    recipe = loop.recipe_from_config(config, sharding.make_mesh(1, jax.devices()[:1]))
    state = jax.eval_shape(functools.partial(steps.init_state, recipe), jax.random.key(0))
    b, r = int(config.train.global_batch_size), cfg.resolution
    batch = {
        "image": jax.ShapeDtypeStruct((b, r, r, 3), jnp.float32),
        "mask": jax.ShapeDtypeStruct((b, r, r, 1), jnp.float32),
    }
    after_main, metrics = jax.eval_shape(functools.partial(steps.main_step, recipe), state, batch)
    after_r1, r1_metrics = jax.eval_shape(functools.partial(steps.r1_step, recipe), state, batch)
    for after in (after_main, after_r1):
        assert jax.tree.structure(after) == jax.tree.structure(state)
        assert jax.tree.map(lambda x: (x.shape, x.dtype), after) == jax.tree.map(lambda x: (x.shape, x.dtype), state)
    assert {"G/loss", "D/loss", "G/total", "D/total"} <= set(metrics) and "R1/penalty" in r1_metrics
    assert any(k.endswith("_s1") for k in metrics) == cfg.d_stage1


# Each compiles a whole training step of its own model (2-4 minutes on 2 cores): single_stage's (the cheapest: no
# stage 2) in the fast suite, every other variant under -m slow.
FAST_TRAINED = ("single_stage",)


@pytest.mark.parametrize(
    "name",
    [p.stem if p.stem in FAST_TRAINED else pytest.param(p.stem, marks=pytest.mark.slow) for p in VARIANTS],
)
def test_variant_trains_a_step_and_checkpoints(tmp_path, name, _release_programs):
    from mat_jax.train import nets_io

    config = micro_config(*_variant_overrides(REPO / "configs" / "ablations" / f"{name}.py"), "train.total_steps=1")
    result = loop.train(config, tmp_path / name)
    assert result == {"status": "completed", "step": 1, "workdir": str(tmp_path / name)}
    assert run_dir.complete_steps(tmp_path / name) == [1]
    cfg = run_dir.model_config(tmp_path / name)
    assert cfg == model_config(config)
    # the logged terms are those of the networks built: `_s1` ones only with the stage-1 D branch (R1 ran at step 0)
    (row,) = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert {"G/loss", "D/loss", "R1/penalty", "G/total", "D/total"} <= set(row) and row["finite"] == 1.0
    assert bool([k for k in row if k.endswith("_s1")]) == cfg.d_stage1
    if not cfg.d_stage1:  # the totals are the main branch's terms alone (l1_ratio = 0, pcp off)
        assert row["D/total"] == pytest.approx(row["D/loss"]) and row["G/total"] == pytest.approx(row["G/loss"])
        assert row["R1/reg"] == pytest.approx(row["R1/penalty"] * config.loss.r1_gamma / 2, rel=1e-5)
    # the checkpoint holds the networks built, and goes through the official-name table and back unchanged
    nets = nets_io.load_nets(tmp_path / name, ("G_ema", "D")).nets
    assert any("stg1" in k for k in nets["D"]["params"]) == cfg.d_stage1
    assert ("dec" in nets["G_ema"]["params"]["synthesis"]) == (cfg.stages == 2)
    nets_io.save_nets(tmp_path / "nets.safetensors", cfg, nets)
    again = nets_io.load_nets(tmp_path / "nets.safetensors", ("G_ema", "D"))
    assert again.cfg == cfg and tree_equal(again.nets, nets)


@pytest.mark.parametrize(
    "overrides, fields",
    [
        (["model.stage1_token_res=32"], ["stage1_token_res", "resolution"]),  # token map as large as the image
        (["model.stage1_window_sizes=(8, 8, 3, 8, 8)"], ["stage1_window_sizes[2]"]),
        (["data.resolution=64"], ["data.resolution", "model.resolution"]),
        (["loss.pcp_ratio=0.1"], ["loss.pcp_ratio", "loss.vgg_weights"]),
        (["model.attention='windowed'"], ["attention"]),
        (["model.stages=1"], ["model.stages", "model.d_stage1"]),  # single stage with a stage-1 D branch
        (["model.stages=3", "model.d_stage1=False"], ["stages"]),
    ],
)
def test_impossible_combination_fails_before_compiling(overrides, fields, monkeypatch, tmp_path):
    from mat_jax.train import programs

    monkeypatch.setattr(programs, "build", lambda *a, **k: pytest.fail("compiled before the config was checked"))
    config = micro_config(*overrides)
    with pytest.raises((ValueError, ConfigError)) as e:
        loop.train(config, tmp_path / "run")
    for f in fields:
        assert f in str(e.value)


def test_linear_patch_embedding_tokens_and_masks():
    from mat_jax.models.first_stage import LinearPatchEmbed

    x = jnp.arange(2 * 8 * 8 * 4, dtype=jnp.float32).reshape(2, 8, 8, 4) / 100
    masks = jnp.ones((2, 8, 8, 1)).at[0, :4, :4].set(0.0).at[1, :3, :3].set(0.0)
    module = LinearPatchEmbed(dim=5, patch=4)
    variables = module.init(jax.random.key(0), x, masks)
    tokens, m = module.apply(variables, x, masks)
    assert tokens.shape == (2, 2, 2, 5) and variables["params"]["proj"]["weight"].shape == (64, 5)
    np.testing.assert_array_equal(np.asarray(m[..., 0]), [[[0, 1], [1, 1]], [[1, 1], [1, 1]]])  # any known pixel
    w = variables["params"]["proj"]["weight"] / np.sqrt(64)  # token (1, 0) of image 0 = its patch, flattened
    np.testing.assert_allclose(
        tokens[0, 1, 0], x[0, 4:8, 0:4].reshape(-1) @ w + variables["params"]["proj"]["bias"], rtol=1e-5
    )


def test_linear_patch_embedding_is_validated_and_refused_by_the_twin():
    from mat_jax.models import MATConfig
    from mat_jax.torch_twin.config import check_supported

    with pytest.raises(ValueError, match=r"stage1_embed must be one of \('conv', 'linear_patch'\)"):
        MATConfig(stage1_embed="patches")
    with pytest.raises(ValueError, match=r"cannot build this configuration: stage1_embed='linear_patch'"):
        check_supported(MATConfig(stage1_embed="linear_patch"))


def _micro_model(*overrides: str):
    return model_config(micro_config(*overrides))


def test_single_stage_output_is_the_stage1_composite():
    """stages=1 returns (stage 1, stage 1) from the mapping and stage-1 weights alone: that image equals the stage-1
    output of the two-stage generator those weights come from (same inputs, SMM maps, constant noise), which stage 2
    then changes."""
    from mat_jax.models.first_stage import bernoulli_map
    from mat_jax.models.generator import smm_shapes

    one = _micro_model("model.stages=1", "model.d_stage1=False")
    two = one.replace(stages=2)
    images, masks, z = _micro_inputs(one)
    maps = tuple(bernoulli_map(jax.random.key(i), s) for i, s in enumerate(smm_shapes(one, 1)))
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    init2 = jax.jit(lambda: Generator(two).init_with_output(keys, images, masks, z, noise_mode="const", smm_maps=maps))
    (final2, stage1_2), v2 = init2()
    v1 = {  # the single-stage variables: a sub-tree of the two-stage ones (apply fails on any missing variable)
        "params": {
            "mapping": v2["params"]["mapping"],
            "synthesis": {"first_stage": v2["params"]["synthesis"]["first_stage"]},
        },
        "buffers": {"mapping": v2["buffers"]["mapping"]},
    }
    final1, stage1_1 = jax.jit(lambda v: Generator(one).apply(v, images, masks, z, noise_mode="const", smm_maps=maps))(
        v1
    )
    np.testing.assert_array_equal(np.asarray(final1), np.asarray(stage1_1))
    # two XLA programs (fused differently): equal up to float32 summation order (seen: 2.4e-6 on values ~0.1)
    np.testing.assert_allclose(np.asarray(final1), np.asarray(stage1_2), rtol=1e-5, atol=1e-5)
    known = np.broadcast_to(np.asarray(masks) == 1, final1.shape)
    np.testing.assert_array_equal(np.asarray(final1)[known], np.asarray(images)[known])
    assert np.abs(np.asarray(final2) - np.asarray(stage1_2))[~known].max() > 1e-3  # stage 2 is what single drops


def test_switches_drop_exactly_the_stage2_and_stage1_branch_params():
    from mat_jax.weights.layout import abstract_variables, build_table

    one = _micro_model("model.stages=1", "model.d_stage1=False")
    official = one.replace(stages=2, d_stage1=True)
    g, g_official = abstract_variables(one, "G"), abstract_variables(official, "G")
    assert set(g["params"]) == {"mapping", "synthesis"} and set(g["params"]["synthesis"]) == {"first_stage"}
    assert jax.tree.map(lambda x: x.shape, g["params"]["synthesis"]) == jax.tree.map(
        lambda x: x.shape, {"first_stage": g_official["params"]["synthesis"]["first_stage"]}
    )
    assert set(g["buffers"]) == {"mapping"}  # the noise_const buffers live in stage 2
    assert all(e.official.startswith(("synthesis.first_stage.", "mapping.")) for e in build_table(one, "G"))
    d, d_official = abstract_variables(one, "D")["params"], abstract_variables(official, "D")["params"]
    stg1 = {k for k in d_official if "stg1" in k}
    assert {"Dis_stg1_0", "fc0_stg1", "fc1_stg1"} <= stg1 and set(d) == set(d_official) - stg1
    assert not any("stg1" in e.official for e in build_table(one, "D"))


def test_discriminator_without_stage1_branch_is_the_main_branch_and_its_r1():
    """d_stage1=False: the main logits equal the two-branch D's with the same main-branch weights, the stage-1 logits
    are None, and the R1 loss is the main branch's penalty alone (vs jax.grad of the two-branch D's main logits)."""
    from mat_jax.models import Discriminator
    from mat_jax.train import steps

    cfg = _micro_model("model.d_stage1=False")
    full = cfg.replace(d_stage1=True)
    rng = np.random.default_rng(3)
    images = jnp.asarray(rng.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)
    masks = jnp.asarray(rng.uniform(size=(2, 32, 32, 1)) > 0.3, jnp.float32)
    recipe = steps.Recipe(model=cfg, global_batch=2, r1_gamma=10.0, d_reg_interval=4)

    @jax.jit
    def run():
        d_full = Discriminator(full)
        v_full = d_full.init(jax.random.key(0), images, masks, images)
        params = {k: p for k, p in v_full["params"].items() if "stg1" not in k}
        logits = Discriminator(cfg).apply({"params": params}, images, masks, None)
        want = d_full.apply(v_full, images, masks, images)[0]
        g = jax.grad(lambda x: jnp.sum(d_full.apply(v_full, x, masks, images)[0]))(images)
        return logits, want, g, steps.r1_loss(recipe, params, {"image": images, "mask": masks})

    (logit, logit1), want, g, (total, m) = run()
    assert logit1 is None
    np.testing.assert_allclose(np.asarray(logit), np.asarray(want), rtol=1e-5, atol=1e-6)
    r1 = np.sum(np.square(np.asarray(g)), axis=(1, 2, 3))
    assert set(m) == {"R1/penalty", "R1/reg", "R1/total"}
    np.testing.assert_allclose(float(m["R1/penalty"]), r1.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(total), 4 * np.mean(r1 * 10 / 2), rtol=1e-5)


def test_stage_switches_are_validated_and_refused_by_the_twin():
    from mat_jax.models import MATConfig
    from mat_jax.torch_twin.config import check_supported

    with pytest.raises(ValueError, match=r"stages must be 1 .* or 2 .*got 0"):
        MATConfig(stages=0, d_stage1=False)
    with pytest.raises(ValueError, match=r"model\.stages=1 with model\.d_stage1=True .* set model\.d_stage1=False"):
        MATConfig(stages=1)
    with pytest.raises(ValueError, match=r"cannot build this configuration: stages=1 .*, d_stage1=False"):
        check_supported(MATConfig(stages=1, d_stage1=False))
    with pytest.raises(ValueError, match=r"cannot build this configuration: d_stage1=False"):
        check_supported(MATConfig(d_stage1=False))
