"""Golden parity with the official PyTorch MAT (weights from make_params, replayed SMM maps)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from golden_utils import assert_close, load_make_params, nchw, nhwc

from mat_jax.models import Discriminator, Generator, MATConfig
from mat_jax.weights.layout import official_to_variables


def _run(golden_dir, res):
    mp = load_make_params(golden_dir)
    g = np.load(golden_dir / f"golden_{res}.npz")
    cfg = MATConfig(resolution=res)
    v_g = official_to_variables(mp.make_params(golden_dir / f"keys_G_{res}.json"), cfg, "G")
    v_d = official_to_variables(mp.make_params(golden_dir / f"keys_D_{res}.json"), cfg, "D")
    gen, dis = Generator(cfg), Discriminator(cfg)
    z = jnp.asarray(g["z"])
    out = {
        "ws_psi1": gen.apply(v_g, z, method=Generator.map),
        "ws_psi05": gen.apply(v_g, z, None, 0.5, method=Generator.map),
    }
    maps = (jnp.asarray(g["dropout0_out"]), jnp.asarray(nhwc(g["dropout1_out"])))
    synth = jax.jit(lambda v, i, m, w, mp_: gen.apply(v, i, m, w, "const", mp_, method=Generator.synthesize))
    images, masks = jnp.asarray(nhwc(g["images"])), jnp.asarray(nhwc(g["masks"]))
    final, stage1, aux = synth(v_g, images, masks, jnp.asarray(g["ws_psi1"]), maps)
    out.update(img=final, img_stg1=stage1, aux=aux)
    d = jax.jit(lambda v, a, m, b: dis.apply(v, a, m, b, return_features=True))
    out["d_fake"] = d(v_d, jnp.asarray(nhwc(g["img"])), masks, jnp.asarray(nhwc(g["img_stg1"])))
    out["d_real"] = d(v_d, images, masks, images)
    return g, out


@pytest.fixture(scope="module")
def golden256(golden_dir):
    return _run(golden_dir, 256)


def _check_all(g, out):
    assert_close("ws_psi1", out["ws_psi1"], g["ws_psi1"])
    assert_close("ws_psi05", out["ws_psi05"], g["ws_psi05"])
    assert_close("img_stg1", nchw(out["img_stg1"]), g["img_stg1"])
    assert_close("img", nchw(out["img"]), g["img"])
    (l, l1, f), (lr, lr1, fr) = out["d_fake"], out["d_real"]
    assert_close("d_logits", l, g["d_logits"])
    assert_close("d_logits_stg1", l1, g["d_logits_stg1"])
    assert_close("d_real_logits", lr, g["d_real_logits"])
    assert_close("d_real_logits_stg1", lr1, g["d_real_logits_stg1"])
    assert_close("d_fake_Dis_out", nchw(f["Dis_out"]), g["h_d_fake_Dis_out"])
    assert_close("d_real_Dis_stg1_out", nchw(fr["Dis_stg1_out"]), g["h_d_real_Dis_stg1_out"])


def test_golden_256_outputs(golden256):
    _check_all(*golden256)


def test_golden_256_intermediates(golden256):
    g, out = golden256
    aux = out["aux"]
    for name in ("stg1_tran2_x", "stg1_ws_style", "stg1_to_square", "stg1_to_style", "syn_to_square", "syn_to_style"):
        assert_close(name, aux[name], g["h_" + name])
    assert_close("stg1_tran0_x", np.asarray(aux["stg1_tran0_x"])[..., :16], g["h_stg1_tran0_x__c0to16"])
    assert_close("stg1_tran1_x", np.asarray(aux["stg1_tran1_x"])[..., :48], g["h_stg1_tran1_x__c0to48"])
    assert_close("stg1_tran3_x", np.asarray(aux["stg1_tran3_x"])[..., :48], g["h_stg1_tran3_x__c0to48"])
    assert_close("stg1_tran4_x", np.asarray(aux["stg1_tran4_x"])[..., :16], g["h_stg1_tran4_x__c0to16"])
    mid = np.asarray(aux["stg1_mid_mixed_feat"]).reshape(2, 16, 16, -1)
    assert_close("stg1_mid_mixed_feat", nchw(mid), g["h_stg1_mid_mixed_feat"])
    assert_close("enc_f16", nchw(aux["enc_f16"]), g["h_enc_f16"])
    assert_close("dec_16x16_x", nchw(aux["dec_16x16_x"])[:, :64], g["h_dec_16x16_x__c0to64"])
    for r in (16, 32, 64):
        assert_close(f"dec_{r}x{r}_img", nchw(aux[f"dec_{r}x{r}_img"]), g[f"h_dec_{r}x{r}_img"])
    assert_close("dec_img_raw", nchw(aux["dec_img_raw"]), g["h_dec_img_raw"])
    # Channel statistics of every stored map (cheap check of all channels).
    for name in ("enc_f128", "enc_f256", "stg1_conv_first_x", "stg1_enc_conv0_x", "stg1_dec1_x", "dec_128x128_x"):
        a = np.asarray(aux[name], np.float64)
        a = a.reshape(a.shape[0], -1, a.shape[-1])
        assert_close(name + "__chmean", a.mean(1), g[f"h_{name}__chmean"], rel_l2=1e-4, max_rel=1e-4)
        assert_close(name + "__chabsmean", np.abs(a).mean(1), g[f"h_{name}__chabsmean"])


def test_golden_256_dynamic_masks_bit_equal(golden256):
    """The mask after every masked stage equals the official one exactly (binary, no tolerance)."""
    g, out = golden256
    aux = out["aux"]
    for name in ("stg1_conv_first_mask", "stg1_enc_conv0_mask", "stg1_enc_conv1_mask"):
        np.testing.assert_array_equal(nchw(aux[name]), g["h_" + name], err_msg=name)
    for name in ("stg1_tran0_mask", "stg1_tran1_mask"):
        np.testing.assert_array_equal(np.asarray(aux[name]), g["h_" + name], err_msg=name)
        assert set(np.unique(aux[name])) <= {0.0, 1.0}
    # The masks exercise the -100 path: some 8x8 windows of tran.0's input are entirely holes.
    m64 = nchw(aux["stg1_enc_conv1_mask"])[:, 0].reshape(2, 8, 8, 8, 8).transpose(0, 1, 3, 2, 4)
    assert (m64.reshape(2, 64, 64).max(-1) == 0).sum() > 0
    # Known pixels pass through exactly; holes come from the decoders.
    m = nhwc(g["masks"]) == 1
    np.testing.assert_array_equal(
        np.asarray(out["img"])[np.broadcast_to(m, out["img"].shape)],
        nhwc(g["images"])[np.broadcast_to(m, out["img"].shape)],
    )


@pytest.mark.slow
def test_golden_512(golden_dir):
    g, out = _run(golden_dir, 512)
    _check_all(g, out)
    for name in ("stg1_tran0_mask", "stg1_tran1_mask"):
        np.testing.assert_array_equal(np.asarray(out["aux"][name]), g["h_" + name], err_msg=name)
