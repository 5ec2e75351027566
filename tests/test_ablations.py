"""configs/ablations/: every variant is a few lines over the official recipe, loads, builds and runs a generator
forward at micro size (its differences from configs/places512.py applied to the micro config of train_helpers);
two variants train a step and checkpoint; impossible combinations fail before anything compiles, naming the fields."""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import REPO, micro_config

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


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_variant_changes_one_design_choice_and_builds_at_micro_size(path):
    """Every variant's generator traces at micro size (jax.eval_shape: the whole network is built, nothing compiles;
    the compiled forward of every variant is the slow test below, two variants train a step in the next test)."""
    cfg = _checked_variant(path)
    if cfg is None:
        return
    final, stage1 = jax.eval_shape(_forward(cfg), *_micro_inputs(cfg))
    assert final.shape == stage1.shape == (1, cfg.resolution, cfg.resolution, 3)


@pytest.mark.slow
@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_variant_forward_runs_at_micro_size(path):
    cfg = _checked_variant(path)
    if cfg is None:
        return
    images, masks, z = _micro_inputs(cfg)
    final, stage1 = _forward(cfg)(images, masks, z)
    assert final.shape == stage1.shape == (1, cfg.resolution, cfg.resolution, 3)
    assert bool(jnp.all(jnp.isfinite(final)))
    np.testing.assert_array_equal(np.asarray(final)[:, :8], np.asarray(images)[:, :8])  # known pixels kept


def _checked_variant(path):
    """The micro model config of a variant after checking it is one design choice over the base recipe; None for a
    loss / data variant (its generator is the micro one)."""
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
    return cfg if any(o.startswith("model.") for o in overrides) else None


# Each compiles a whole training step of its own model (minutes on 2 cores): one in the fast suite, one under -m slow.
@pytest.mark.parametrize("name", ["block_prenorm", pytest.param("no_style_manipulation", marks=pytest.mark.slow)])
def test_variant_trains_a_step_and_checkpoints(tmp_path, name):
    config = micro_config(*_variant_overrides(REPO / "configs" / "ablations" / f"{name}.py"), "train.total_steps=1")
    result = loop.train(config, tmp_path / name)
    assert result == {"status": "completed", "step": 1, "workdir": str(tmp_path / name)}
    assert run_dir.complete_steps(tmp_path / name) == [1]
    assert run_dir.model_config(tmp_path / name) == model_config(config)


@pytest.mark.parametrize(
    "overrides, fields",
    [
        (["model.stage1_token_res=32"], ["stage1_token_res", "resolution"]),  # token map as large as the image
        (["model.stage1_window_sizes=(8, 8, 3, 8, 8)"], ["stage1_window_sizes[2]"]),
        (["data.resolution=64"], ["data.resolution", "model.resolution"]),
        (["loss.pcp_ratio=0.1"], ["loss.pcp_ratio", "loss.vgg_weights"]),
        (["model.attention='windowed'"], ["attention"]),
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
