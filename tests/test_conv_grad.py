"""The custom-VJP convolution (`mat_jax/kernels/conv.py`) against XLA's own gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mat_jax.kernels import conv

# (B, H, W, Cin, Cout, kh, kw, stride, padding): every form MAT uses (3x3 same, 1x1, the polyphase
# up-conv sub-kernels with one-sided padding, 3x3 stride 2 after the blur, 4x4 stride 2 valid) plus
# maps big enough for the chunked weight gradient with a remainder chunk.
CASES = [
    (2, 9, 7, 3, 5, 3, 3, 1, 1),
    (1, 5, 6, 4, 3, 1, 1, 1, 0),
    (2, 8, 8, 3, 4, 2, 2, 1, ((1, 1), (1, 1))),
    (2, 8, 8, 3, 4, 2, 1, 1, ((1, 1), (0, 0))),
    (2, 8, 8, 3, 4, 1, 2, 1, ((0, 0), (1, 1))),
    (2, 9, 9, 3, 4, 3, 3, 2, 0),
    (1, 10, 11, 2, 3, 3, 3, 2, 1),
    (1, 12, 12, 2, 3, 4, 4, 2, 0),
    (2, 37, 41, 6, 5, 3, 3, 1, 1),
    (2, 45, 40, 8, 6, 1, 1, 1, 0),
    (2, 71, 71, 4, 5, 3, 3, 2, 0),
]


def _xla(x, w, stride, padding):
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), conv.normalize_padding(padding), dimension_numbers=conv.DN
    )


def _data(case, dtype=jnp.float32):
    b, h, w, ci, co, kh, kw, s, p = case
    rng = np.random.default_rng(sum(map(hash, map(str, case))) % 2**32)
    x = jnp.asarray(rng.standard_normal((b, h, w, ci)), dtype)
    k = jnp.asarray(rng.standard_normal((kh, kw, ci, co)), dtype)
    y = _xla(x.astype(jnp.float32), k.astype(jnp.float32), s, p)
    dy = jnp.asarray(rng.standard_normal(y.shape), dtype)
    return x, k, dy, s, p


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def _custom(x, k, s, p):
    """The CPU default: custom gradients, Winograd where it applies."""
    return conv.conv2d(x, k, s, p, algorithm="winograd")


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    monkeypatch.setattr(conv, "CHUNK_ELEMENTS", 2000)  # many row chunks even on small maps


@pytest.mark.parametrize("chunk", [2000, 7560], ids=["chunk2000", "chunk7560"])  # 7560: 3 rows of the 71x71 s2 case
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"-s{c[7]}-p{c[8]}")
def test_forward_and_vjp_match_xla(case, chunk, monkeypatch):
    monkeypatch.setattr(conv, "CHUNK_ELEMENTS", chunk)  # 35 output rows = 11 scanned chunks of 3 + a remainder of 2
    x, k, dy, s, p = _data(case)
    y_ref, vjp_ref = jax.vjp(lambda a, b: _xla(a, b, s, p), x, k)
    y, vjp = jax.vjp(lambda a, b: _custom(a, b, s, p), x, k)
    assert y.shape == y_ref.shape
    assert _rel(y, y_ref) < 1e-6
    for got, ref, name in zip(vjp(dy), vjp_ref(dy), ("dx", "dw"), strict=True):
        assert got.shape == ref.shape and got.dtype == ref.dtype, name
        assert _rel(got, ref) < 1e-5, name


@pytest.mark.parametrize("case", [CASES[0], CASES[5], CASES[2]], ids=["3x3", "3x3-s2", "2x2-pad"])
def test_second_order_matches_xla(case):
    """R1 differentiates an input gradient w.r.t. the weights: grad of grad goes through the custom VJP."""
    x, k, _, s, p = _data(case)

    def penalty(f, kk):
        g = jax.grad(lambda xx: jnp.sum(jnp.tanh(f(xx, kk, s, p))))(x)
        return jnp.sum(jnp.square(g))

    ref = jax.grad(lambda kk: penalty(_xla, kk))(k)
    got = jax.jit(jax.grad(lambda kk: penalty(_custom, kk)))(k)
    assert _rel(got, ref) < 1e-5


def test_bf16_gradients_close_to_float32():
    x, k, dy, s, p = _data(CASES[8], jnp.bfloat16)
    _, vjp = jax.vjp(lambda a, b: _custom(a, b, s, p), x, k)
    dx, dw = vjp(dy)
    assert dx.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
    f32 = [a.astype(jnp.float32) for a in (x, k, dy)]
    _, vjp_ref = jax.vjp(lambda a, b: _xla(a, b, s, p), f32[0], f32[1])
    for got, ref in zip((dx, dw), vjp_ref(f32[2]), strict=True):
        assert _rel(got.astype(jnp.float32), ref) < 2e-2


def test_algorithm_names_and_environment_overrides():
    from mat_jax.kernels import settings

    assert settings.algorithm_from_env({}, "cpu") == "winograd"
    assert settings.algorithm_from_env({}, "gpu") == "xla"
    assert settings.algorithm_from_env({"MAT_JAX_CONV_GRAD": "xla"}, "cpu") == "xla"
    assert settings.algorithm_from_env({"MAT_JAX_CONV_GRAD": "custom"}, "tpu") == "winograd"
    assert settings.algorithm_from_env({"MAT_JAX_WINOGRAD": "0"}, "cpu") == "custom"
    with pytest.raises(ValueError, match="MAT_JAX_CONV_GRAD"):
        settings.algorithm_from_env({"MAT_JAX_CONV_GRAD": "fast"}, "cpu")
    with pytest.raises(ValueError, match="MAT_JAX_WINOGRAD"):
        settings.algorithm_from_env({"MAT_JAX_WINOGRAD": "yes"}, "cpu")
    with pytest.raises(ValueError, match="convolution algorithm must be one of"):
        settings.resolve("fast")
    assert settings.resolve("custom") == "custom" and settings.resolve("auto") == settings.default_algorithm()


def test_auto_is_fixed_once_per_process(monkeypatch):
    """Setting the environment after the first convolution changes nothing: no compiled program can disagree."""
    from mat_jax.kernels import settings

    before = settings.default_algorithm()
    monkeypatch.setenv("MAT_JAX_CONV_GRAD", "xla" if before != "xla" else "custom")
    assert settings.default_algorithm() == before
