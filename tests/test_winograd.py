"""Winograd F(2x2,3x3) convolution (`mat_jax/kernels/winograd.py`) against XLA's direct convolution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from golden_utils import errors

from mat_jax.kernels import conv, winograd

# (B, H, W, Cin, Cout): square and non-square maps, channel counts that are not multiples of anything.
CASES = [(2, 32, 32, 3, 5), (1, 34, 40, 6, 4), (2, 64, 32, 5, 7)]


def _xla(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=conv.DN)


def _data(case, seed=0):
    b, h, w, ci, co = case
    rng = np.random.default_rng(seed + h * w + ci * co)
    x = jnp.asarray(rng.standard_normal((b, h, w, ci)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((3, 3, ci, co)), jnp.float32)
    dy = jnp.asarray(rng.standard_normal((b, h, w, co)), jnp.float32)
    return x, k, dy


def _rel(a, ref):
    return errors(a, ref)[1]  # relative L2 in float64


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_forward_and_vjp_match_direct_convolution(case):
    x, k, dy = _data(case)
    y_ref, vjp_ref = jax.vjp(_xla, x, k)
    y, vjp = jax.vjp(winograd.conv3x3, x, k)
    assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
    assert _rel(y, y_ref) < 2e-6
    for got, ref, name in zip(vjp(dy), vjp_ref(dy), ("dx", "dw"), strict=True):
        assert got.shape == ref.shape and got.dtype == ref.dtype, name
        assert _rel(got, ref) < 1e-5, name


def test_transposed_transforms_are_exact_adjoints():
    """<T x, v> == <x, T^T v> for the input and output tile transforms (float64-free check at float32)."""
    x, _, dy = _data(CASES[1])
    vs = winograd.input_tiles(x)
    rng = np.random.default_rng(1)
    probe = [jnp.asarray(rng.standard_normal(v.shape), jnp.float32) for v in vs]
    lhs = sum(float(jnp.vdot(v, p)) for v, p in zip(vs, probe, strict=True))
    rhs = float(jnp.vdot(x, winograd.input_tiles_transpose(probe, x.shape)))
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)
    ms = [jnp.asarray(rng.standard_normal(v.shape[:1] + dy.shape[-1:]), jnp.float32) for v in vs]
    b, h, w, _ = dy.shape
    lhs = float(jnp.vdot(winograd.output_tiles(ms, b, h, w), dy))
    rhs = sum(float(jnp.vdot(m, t)) for m, t in zip(ms, winograd.output_tiles_transpose(dy), strict=True))
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)


def test_second_order_matches_direct_convolution():
    """R1 differentiates an input gradient w.r.t. the weights: grad of grad through the custom VJP."""
    x, k, _ = _data(CASES[0])

    def penalty(f, kk):
        g = jax.grad(lambda xx: jnp.sum(jnp.tanh(f(xx, kk))))(x)
        return jnp.sum(jnp.square(g))

    ref = jax.grad(lambda kk: penalty(_xla, kk))(k)
    got = jax.jit(jax.grad(lambda kk: penalty(winograd.conv3x3, kk)))(k)
    assert _rel(got, ref) < 1e-5


def test_bfloat16_inputs_keep_their_dtype():
    x, k, dy = _data(CASES[0])
    xb, kb = x.astype(jnp.bfloat16), k.astype(jnp.bfloat16)
    y, vjp = jax.vjp(winograd.conv3x3, xb, kb)
    dx, dk = vjp(dy.astype(jnp.bfloat16))
    assert y.dtype == dx.dtype == dk.dtype == jnp.bfloat16
    assert _rel(y.astype(jnp.float32), _xla(x, k)) < 2e-2


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, pad, expected",
    [
        ((2, 32, 32, 8), (3, 3, 8, 4), 1, ((1, 1), (1, 1)), True),
        ((1, 64, 128, 8), (3, 3, 8, 4), 1, ((1, 1), (1, 1)), True),
        ((2, 16, 16, 8), (3, 3, 8, 4), 1, ((1, 1), (1, 1)), False),  # below MIN_SIZE
        ((2, 33, 32, 8), (3, 3, 8, 4), 1, ((1, 1), (1, 1)), False),  # odd height
        ((2, 32, 32, 8), (3, 3, 8, 4), 2, ((1, 1), (1, 1)), False),  # strided
        ((2, 32, 32, 8), (3, 3, 8, 4), 1, ((0, 0), (0, 0)), False),  # 'valid'
        ((2, 32, 32, 8), (1, 1, 8, 4), 1, ((0, 0), (0, 0)), False),  # 1x1
        ((2, 32, 32, 8), (2, 2, 8, 4), 1, ((1, 1), (1, 1)), False),  # polyphase sub-kernel
    ],
)
def test_applies_only_to_3x3_same_stride1_even_maps(x_shape, w_shape, stride, pad, expected):
    assert winograd.applies(x_shape, w_shape, stride, pad) is expected


def test_conv2d_dispatch_by_algorithm(monkeypatch):
    calls = []
    real = winograd.conv3x3

    def spy(x, w):
        calls.append(x.shape)
        return real(x, w)

    monkeypatch.setattr(winograd, "conv3x3", spy)
    x, k, _ = _data(CASES[0])
    y = conv.conv2d(x, k, 1, 1, algorithm="winograd")
    assert calls == [x.shape] and _rel(y, _xla(x, k)) < 2e-6
    conv.conv2d(x[:, :31], k, 1, 1, algorithm="winograd")  # odd height: direct path
    assert len(calls) == 1
    for algorithm in ("custom", "xla"):
        assert _rel(conv.conv2d(x, k, 1, 1, algorithm=algorithm), _xla(x, k)) < 2e-6
    assert len(calls) == 1
    with pytest.raises(ValueError, match="convolution algorithm"):
        conv.conv2d(x, k, 1, 1, algorithm="yes")


def test_data_parallel_over_8_devices_equals_one_device():
    """Batch-sharded over 8 (simulated) devices, the tiles' batch*space rows and the weight gradient's
    contraction over them are split across devices; values and gradients match the single-device run."""
    devices = jax.devices()
    if len(devices) < 8:
        pytest.skip("needs 8 devices (tests/conftest.py sets --xla_force_host_platform_device_count=8)")
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    x, k, _ = _data((8, 32, 32, 4, 6))
    mesh = Mesh(np.array(devices[:8]), ("data",))
    xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
    ks = jax.device_put(k, NamedSharding(mesh, PartitionSpec()))

    def loss_and_grads(a, b):
        return jax.value_and_grad(lambda aa, bb: jnp.sum(jnp.tanh(winograd.conv3x3(aa, bb))), argnums=(0, 1))(a, b)

    (l1, g1) = jax.jit(loss_and_grads)(x, k)
    (l8, g8) = jax.jit(loss_and_grads)(xs, ks)
    assert len(g8[0].sharding.device_set) == 8
    np.testing.assert_allclose(np.asarray(l8), np.asarray(l1), rtol=1e-6)
    for a, b in zip(g8, g1, strict=True):
        assert _rel(a, b) < 1e-6
