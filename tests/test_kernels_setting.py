"""The convolution algorithm is a static model setting (`MATConfig.conv`), not an environment read at trace time."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_configs import TINY

from mat_jax.kernels import settings
from mat_jax.models import Discriminator, Generator, MATConfig
from mat_jax.models.config import CONV_ALGORITHMS
from mat_jax.train.nets_io import is_official_architecture


def _inputs(cfg, batch=1, seed=0):
    rng = np.random.default_rng(seed)
    r = cfg.resolution
    images = jnp.asarray(rng.uniform(-1, 1, (batch, r, r, 3)).astype(np.float32))
    masks = np.ones((batch, r, r, 1), np.float32)
    masks[:, r // 4 : 3 * r // 4, r // 8 : r // 2] = 0
    return images, jnp.asarray(masks)


def _convolutions(lowered) -> int:
    return lowered.as_text().count("stablehlo.convolution")


def test_every_layer_follows_the_network_setting():
    """The same D under 'xla' and 'winograd': different programs (XLA's convolutions vs matmuls and Winograd
    tiles), the same logits up to float rounding."""
    images, masks = _inputs(TINY, batch=2)
    variables = Discriminator(TINY).init(jax.random.key(0), images, masks, images)
    out, counts = {}, {}
    for algorithm in ("xla", "custom", "winograd"):
        d = Discriminator(TINY.replace(conv=algorithm))
        fn = jax.jit(lambda v, i, m, d=d: d.apply(v, i, m, i))
        counts[algorithm] = _convolutions(fn.lower(variables, images, masks))
        out[algorithm] = np.asarray(fn(variables, images, masks)[0])
    n_conv_layers = sum(1 for p in jax.tree_util.tree_leaves_with_path(variables["params"]) if p[1].ndim == 4)
    assert counts["xla"] >= n_conv_layers  # every conv layer is an XLA convolution
    assert counts["custom"] < counts["xla"]  # 1x1 and strided convolutions became matmuls
    assert counts["winograd"] < counts["custom"]  # and the 3x3 stride-1 ones on even maps >= 32 Winograd tiles
    for algorithm in ("custom", "winograd"):
        np.testing.assert_allclose(out[algorithm], out["xla"], rtol=1e-4, atol=1e-4)


def test_generator_reaches_every_layer():
    images, masks = _inputs(TINY)
    g = Generator(TINY)
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    z = jnp.zeros((1, TINY.z_dim))
    variables = jax.jit(g.init)(keys, images, masks, z)
    counts = {}
    for algorithm in ("xla", "winograd"):
        gen = Generator(TINY.replace(conv=algorithm))
        fn = jax.jit(
            lambda v, i, m, gen=gen: gen.apply(v, i, m, z, rngs={"smm": jax.random.key(1), "noise": jax.random.key(2)})
        )
        counts[algorithm] = _convolutions(fn.lower(variables, images, masks))
    assert counts["winograd"] < counts["xla"]


def test_conv_is_execution_not_architecture(tmp_path):
    assert CONV_ALGORITHMS is settings.ALGORITHMS
    assert MATConfig(conv="xla").architecture() == MATConfig()
    assert MATConfig(conv="xla") != MATConfig()  # a different program: different jit traces
    assert is_official_architecture(MATConfig(resolution=256, conv="winograd"))
    old = MATConfig(resolution=256).to_dict()
    del old["conv"]  # a model_config.json written before the field existed
    assert MATConfig.from_dict(json.loads(json.dumps(old))) == MATConfig(resolution=256)
    with pytest.raises(ValueError, match="conv must be one of"):
        MATConfig(conv="fast")
