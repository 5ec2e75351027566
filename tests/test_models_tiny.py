"""Behaviour of the networks on a tiny configuration: jit, masks, ablations, noise, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_configs import TINY

from mat_jax import inference
from mat_jax.models import Discriminator, Generator
from mat_jax.models.attention import WindowAttention, shifted_window_mask
from mat_jax.models.discriminator import minibatch_std

R = TINY.resolution


def _inputs(b=2, seed=0, hole=(10, 40)):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (b, R, R, 3)).astype(np.float32)
    masks = np.ones((b, R, R, 1), np.float32)
    masks[:, hole[0] : hole[1], hole[0] // 2 : hole[1]] = 0
    return images, masks


@pytest.fixture(scope="module")
def tiny_g():
    images, masks = _inputs()
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    variables = jax.jit(Generator(TINY).init)(keys, images, masks, jnp.zeros((2, TINY.z_dim)))
    return inference.Inpainter(TINY, variables)


def test_forward_shapes_known_region_and_determinism(tiny_g):
    images, masks = _inputs()
    final, stage1 = tiny_g(images, masks, seed=3, noise_mode="const")
    assert final.shape == stage1.shape == (2, R, R, 3)
    assert np.all(np.isfinite(final)) and np.all(np.isfinite(stage1))
    known = np.broadcast_to(masks == 1, final.shape)
    np.testing.assert_array_equal(final[known], images[known])
    np.testing.assert_array_equal(stage1[known], images[known])
    again, _ = tiny_g(images, masks, seed=3, noise_mode="const")
    np.testing.assert_array_equal(final, again)
    other, _ = tiny_g(images, masks, seed=4, noise_mode="const")  # new z and SMM maps: new fill
    assert np.abs(other - final)[~known].max() > 1e-4


def test_jit_compiles_once_per_shape(tiny_g):
    images, masks = _inputs(seed=5)
    tiny_g(images, masks, seed=0)
    n = inference.generate._cache_size()
    masks2 = np.ones_like(masks)
    masks2[:, 30:60, 5:50] = 0
    tiny_g(images * 0.5, masks2, seed=1)  # new images, masks, z and SMM maps: no retrace
    tiny_g(images, masks2, z=np.ones((2, TINY.z_dim), np.float32), smm_maps="ones")  # new static smm mode
    assert inference.generate._cache_size() == n + 1


@pytest.mark.parametrize("mode", ["const", "random", "none"])
def test_noise_modes(tiny_g, mode):
    images, masks = _inputs()
    final, _ = tiny_g(images, masks, seed=0, noise_mode=mode, smm_maps="ones")
    assert np.all(np.isfinite(final))


def test_explicit_smm_maps_are_used(tiny_g):
    images, masks = _inputs()
    from mat_jax.models.generator import smm_shapes

    s1, s2 = smm_shapes(TINY, 2)
    ones = (np.ones(s1, np.float32), np.ones(s2, np.float32))
    a, _ = tiny_g(images, masks, seed=0, smm_maps=ones)
    b, _ = tiny_g(images, masks, seed=0, smm_maps="ones")
    np.testing.assert_array_equal(a, b)
    zeros = (np.zeros(s1, np.float32), np.zeros(s2, np.float32))
    c, _ = tiny_g(images, masks, seed=0, smm_maps=zeros)
    assert np.abs(c - a).max() > 1e-4
    with pytest.raises(ValueError, match="smm_maps must have shapes"):
        tiny_g(images, masks, smm_maps=(ones[0][:1], ones[1]))


def test_dynamic_masks_are_binary_and_grow(tiny_g):
    images, masks = _inputs(hole=(4, 60))
    g = Generator(TINY)
    ws = g.apply(tiny_g.variables, jnp.zeros((2, TINY.z_dim)), method=Generator.map)
    _, _, aux = g.apply(tiny_g.variables, images, masks, ws, "const", "ones", method=Generator.synthesize)
    prev = None
    for name in ("stg1_conv_first_mask", "stg1_enc_conv0_mask", "stg1_tran0_mask", "stg1_tran1_mask"):
        m = np.asarray(aux[name])
        assert set(np.unique(m)) <= {0.0, 1.0}, name
        prev = m
    assert prev.mean() > np.asarray(aux["stg1_enc_conv0_mask"]).mean() * 0.99


def test_fully_hole_windows_fall_back_to_plain_attention():
    """A window with no valid key gets a uniform -100 bias: softmax is unchanged, i.e. ordinary
    attention; the window stays invalid. A window with one valid token becomes fully valid."""
    att = WindowAttention(dim=8, num_heads=2)
    x = jax.random.normal(jax.random.key(0), (3, 16, 8))
    v = att.init(jax.random.key(1), x)
    mask = np.zeros((3, 16, 1), np.float32)  # window 0: all holes
    mask[1, 5] = 1  # window 1: one valid token
    mask[2] = 1  # window 2: all valid
    out_m, new = att.apply(v, x, jnp.asarray(mask))
    out_plain, none = att.apply(v, x, None)
    assert none is None
    np.testing.assert_allclose(out_m[0], out_plain[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_m[2], out_plain[2], rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(out_m[1] - out_plain[1])).max() > 1e-3
    np.testing.assert_array_equal(np.asarray(new)[:, :, 0], [[0] * 16, [1] * 16, [1] * 16])
    _, static = WindowAttention(dim=8, num_heads=2, mask_update="none").apply(v, x, jnp.asarray(mask))
    np.testing.assert_array_equal(np.asarray(static), mask)


def test_shift_mask_matches_official_buffer(golden_dir):
    from golden_utils import load_make_params

    mp = load_make_params(golden_dir)
    np.testing.assert_array_equal(shifted_window_mask(64, 64, 8, 4), mp.shifted_window_mask(64, 64))
    np.testing.assert_array_equal(shifted_window_mask(32, 32, 16, 8), mp.shifted_window_mask(4, 256))


def test_minibatch_std_strided_groups():
    """Sample i joins group i mod (N/G), as the official [G, N/G, ...] view does (checked in NCHW)."""
    x = np.random.default_rng(0).normal(size=(8, 4, 4, 6)).astype(np.float32)
    got = np.asarray(minibatch_std(jnp.asarray(x), group_size=4))
    y = x.transpose(0, 3, 1, 2).reshape(4, 2, 1, 6, 4, 4).astype(np.float64)  # official NCHW view
    y = np.sqrt(((y - y.mean(0)) ** 2).mean(0) + 1e-8).mean(axis=(2, 3, 4))  # [2, 1]
    want = np.tile(y, (4, 1))[:, 0]
    np.testing.assert_allclose(got[:, 0, 0, -1], want, rtol=1e-5)
    np.testing.assert_array_equal(got[..., :6], x)


ABLATIONS = [
    dict(attention="window", block="prenorm_residual", shifted_windows=False),
    dict(attention="full", mask_update="none", style_manipulation=False, stage1_masked_layers=1),
]


@pytest.mark.parametrize("overrides", ABLATIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_ablation_switches_build_jit_and_differ(overrides):
    cfg = TINY.replace(**overrides)
    images, masks = _inputs()
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    variables = jax.jit(Generator(cfg).init)(keys, images, masks, jnp.zeros((2, cfg.z_dim)))
    final, stage1 = inference.Inpainter(cfg, variables)(images, masks, seed=0)
    assert final.shape == (2, R, R, 3) and np.all(np.isfinite(final)) and np.all(np.isfinite(stage1))
    names = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
    paths = {"/".join(str(getattr(k, "key", k)) for k in p) for p, _ in names}
    has_ln = any("norm1" in p for p in paths)
    assert has_ln == (cfg.block == "prenorm_residual")
    assert any("to_square" in p for p in paths) == cfg.style_manipulation


def test_discriminator_tiny_and_conditioning():
    images, masks = _inputs()
    cfg = TINY.replace(c_dim=3)
    d = Discriminator(cfg)
    c = np.eye(3, dtype=np.float32)[:2]
    v = jax.jit(d.init)(jax.random.key(0), images, masks, images, c)
    l, l1 = jax.jit(d.apply)(v, images, masks, images, c)
    assert l.shape == l1.shape == (2, 1)
    assert "mapping" in v["params"]
    with pytest.raises(ValueError, match="conditional"):
        d.apply(v, images, masks, images)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda i, m: (i[0], m), "images must be \\[B, H, W, 3\\]"),
        (lambda i, m: (i[:, :, :48], m[:, :, :48]), "multiple of its resolution 64"),
        (lambda i, m: (np.zeros((2, 96, 96, 3), np.float32), np.ones((2, 96, 96, 1))), "multiple of its resolution"),
        (lambda i, m: (i, m * 2), "masks must lie in \\[0, 1\\]"),
        (lambda i, m: (np.where(i > 0.9, np.nan, i), m), "images contain NaN"),
        (lambda i, m: (i, m[:1]), "does not match images"),
        (lambda i, m: (i, np.concatenate([m, m], -1)), "masks must be \\[B, H, W, 1\\]"),
    ],
    ids=["rank", "non-multiple-width", "non-multiple-size", "mask-range", "nan", "mask-batch", "mask-channels"],
)
def test_bad_input_raises_value_error_naming_argument(tiny_g, mutate, match):
    images, masks = mutate(*_inputs())
    with pytest.raises(ValueError, match=match):
        tiny_g(images, masks)


def test_fractional_mask_warns_or_binarizes(tiny_g):
    images, masks = _inputs()
    soft = masks.copy()
    soft[:, 0, 0] = 0.7
    with pytest.warns(UserWarning, match="not binary"):
        tiny_g(images, soft, seed=0, smm_maps="ones")
    a, _ = tiny_g(images, soft, seed=0, smm_maps="ones", binarize_mask=True)
    b, _ = tiny_g(images, masks, seed=0, smm_maps="ones")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="noise_mode"):
        tiny_g(images, masks, noise_mode="off")
    with pytest.raises(ValueError, match="z must be"):
        tiny_g(images, masks, z=np.zeros((2, 5), np.float32))


def test_minibatch_std_per_shard_equals_separate_calls():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 4, 4, 6)).astype(np.float32))
    sharded = minibatch_std(x, group_size=4, num_shards=2)
    separate = jnp.concatenate([minibatch_std(x[:4], 4), minibatch_std(x[4:], 4)])
    np.testing.assert_allclose(np.asarray(sharded), np.asarray(separate), rtol=1e-6)


def test_multiples_of_the_resolution_run_like_the_official_code(tiny_g):
    """H, W multiples of R (non-square too): windows keep their trained size, SMM noise is
    interpolated, const noise is refused (its buffers have the trained size)."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (1, 2 * R, R, 3)).astype(np.float32)
    masks = np.ones((1, 2 * R, R, 1), np.float32)
    masks[:, 20:90, 10:40] = 0
    final, stage1 = tiny_g(images, masks, seed=0, noise_mode="random")
    assert final.shape == (1, 2 * R, R, 3) and np.all(np.isfinite(final))
    known = np.broadcast_to(masks == 1, final.shape)
    np.testing.assert_array_equal(final[known], images[known])
    with pytest.raises(ValueError, match="noise_mode='const' needs"):
        tiny_g(images, masks, noise_mode="const")


def test_mapping_w_avg_tracking_and_truncation_cutoff():
    from mat_jax.models.mapping import MappingNet

    net = MappingNet(z_dim=8, c_dim=0, w_dim=8, num_ws=4, num_layers=2)
    z = jax.random.normal(jax.random.key(0), (5, 8))
    v = net.init(jax.random.key(1), z)
    v = {"params": v["params"], "buffers": {"w_avg": jnp.full((8,), 0.3)}}
    ws, upd = net.apply(v, z, update_w_avg=True, mutable=["buffers"])
    w = np.asarray(ws[:, 0])
    np.testing.assert_allclose(upd["buffers"]["w_avg"], w.mean(0) + 0.995 * (0.3 - w.mean(0)), rtol=1e-6)
    t = np.asarray(net.apply(v, z, truncation_psi=0.5, truncation_cutoff=2))
    want = np.broadcast_to(0.3 + 0.5 * (w[:, None] - 0.3), (5, 2, 8))
    np.testing.assert_allclose(t[:, :2], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(t[:, 2:], np.broadcast_to(w[:, None], (5, 2, 8)))
    same = net.apply(v, z, update_w_avg=False, mutable=["buffers"])[1]
    np.testing.assert_array_equal(same["buffers"]["w_avg"], v["buffers"]["w_avg"])
