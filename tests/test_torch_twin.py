"""The PyTorch twin: official state_dict layout, parity with the official golden run, strict loading of
exported weights, noise modes, ONNX export.

Parity tolerance (golden/README.md "Precision"): the official float32 run differs from float64 by at most
rel-L2 5.4e-6 at 256 (2.7e-5 at 512, D logits) and max-abs/max|ref| 4.4e-6; a second float32
implementation rounds differently by about the same amount. We require, as the README recommends,
rel-L2 <= 5e-5 and max-abs <= 1e-4 * max(1, max|ref|) for images, ws and intermediates, and absolute
2e-5 for the O(0.1-1) D logits. A wrong bias, gain, noise or channel mapping shows at >= 1e-2 relative.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from mat_jax.convert.formats import write_checkpoint
from mat_jax.models.config import MATConfig
from mat_jax.torch_twin import Discriminator, Generator
from mat_jax.torch_twin.layers import StyleConv
from mat_jax.weights.layout import build_table


def _load_make_params(golden_dir):
    spec = importlib.util.spec_from_file_location("golden_make_params", golden_dir / "make_params.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_params


def _twin(net: str, res: int, state=None):
    """Build on the meta device (no init cost); `state` (numpy) is then assigned with strict=True."""
    with torch.device("meta"):
        m = Generator(img_resolution=res) if net == "G" else Discriminator(img_resolution=res)
    if state is not None:
        m.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True, assign=True)
        for sub in m.modules():  # the only non-persistent buffer: the all-ones partial-conv kernel
            if hasattr(sub, "weight_maskUpdater"):
                sub.weight_maskUpdater = torch.ones(sub.weight_maskUpdater.shape)
    return m.eval()


@pytest.mark.parametrize("net", ["G", "D"])
@pytest.mark.parametrize("res", [128, 256, 512])
def test_state_dict_is_the_official_layout(net, res):
    got = [(k, tuple(v.shape)) for k, v in _twin(net, res).state_dict().items()]
    assert got == [(e.official, e.shape) for e in build_table(MATConfig(resolution=res), net)]


def test_buffers_hold_official_values(golden_dir):
    """resample_filter / attn_mask built by the twin equal the official values (make_params computes them)."""
    from mat_jax.torch_twin.layers import Conv2dLayer
    from mat_jax.torch_twin.transformer import SwinTransformerBlock

    mp = importlib.util.module_from_spec(
        spec := importlib.util.spec_from_file_location("golden_make_params", golden_dir / "make_params.py")
    )
    spec.loader.exec_module(mp)
    np.testing.assert_array_equal(Conv2dLayer(1, 1, 3).resample_filter.numpy(), mp.RESAMPLE_FILTER)
    for res, window, n_windows in ((64, 8, 64), (32, 16, 4)):
        block = SwinTransformerBlock(180, [res, res], 6, window, window // 2)
        np.testing.assert_array_equal(block.attn_mask.numpy(), mp.shifted_window_mask(n_windows, window * window))
    assert SwinTransformerBlock(180, [16, 16], 6, 16, 8).attn_mask is None  # window covers the map: no shift


# ----------------------------------------------------------------------------------------------------------
# Golden parity


def _run_golden(golden_dir, res):
    """One G+D forward of the twin on the golden inputs, replaying the recorded dropout maps."""
    make_params = _load_make_params(golden_dir)
    gold = np.load(golden_dir / f"golden_{res}.npz")
    G = _twin("G", res, make_params(golden_dir / f"keys_G_{res}.json"))
    D = _twin("D", res, make_params(golden_dir / f"keys_D_{res}.json"))
    t = lambda k: torch.from_numpy(gold[k])  # noqa: E731
    out, hooks = {}, []
    fs, syn = G.synthesis.first_stage, G.synthesis

    def keep(name, pick=lambda o: o):
        return lambda m, i, o: out.__setitem__(name, pick(o))

    hooks += [
        fs.conv_first.register_forward_hook(keep("h_stg1_conv_first_mask", lambda o: o[1])),
        fs.tran[0].register_forward_hook(keep("h_stg1_tran0_mask", lambda o: o[2])),
        fs.tran[1].register_forward_hook(keep("h_stg1_tran1_mask", lambda o: o[2])),
        fs.tran[2].register_forward_hook(keep("h_stg1_tran2_x", lambda o: o[0])),
        fs.ws_style.register_forward_hook(keep("h_stg1_ws_style")),
        fs.to_square.register_forward_hook(keep("h_stg1_to_square")),
        fs.to_style.register_forward_hook(keep("h_stg1_to_style")),
        syn.enc.register_forward_hook(keep("h_enc_f16", lambda o: o[4].clone())),
        syn.to_square.register_forward_hook(keep("h_syn_to_square")),
        syn.to_style.register_forward_hook(keep("h_syn_to_style")),
        syn.dec.register_forward_hook(keep("h_dec_img_raw")),
        syn.dec.Dec_16x16.register_forward_hook(keep("h_dec_16x16_img", lambda o: o[1])),
        syn.dec.Dec_32x32.register_forward_hook(keep("h_dec_32x32_img", lambda o: o[1])),
        syn.dec.Dec_64x64.register_forward_hook(keep("h_dec_64x64_img", lambda o: o[1])),
    ]
    for i, conv in enumerate(fs.enc_conv):
        hooks.append(conv.register_forward_hook(keep(f"h_stg1_enc_conv{i}_mask", lambda o: o[1])))
    with torch.no_grad():
        out["ws_psi1"] = G.mapping(t("z"), None, truncation_psi=1, skip_w_avg_update=True)
        out["ws_psi05"] = G.mapping(t("z"), None, truncation_psi=0.5, skip_w_avg_update=True)
        smm = (t("dropout0_out"), t("dropout1_out"))
        out["img"], out["img_stg1"] = G.synthesis(
            t("images"), t("masks"), out["ws_psi1"], noise_mode="const", return_stg1=True, smm_maps=smm
        )
        for branch, prefix in ((D.Dis, "h_d_{}_Dis_out"), (D.Dis_stg1, "h_d_{}_Dis_stg1_out")):
            hooks.append(branch.register_forward_hook(lambda m, i, o, p=prefix: out.__setitem__(p.format(mode[0]), o)))
        mode = ["fake"]
        out["d_logits"], out["d_logits_stg1"] = D(out["img"], t("masks"), out["img_stg1"])
        mode[0] = "real"
        out["d_real_logits"], out["d_real_logits_stg1"] = D(t("images"), t("masks"), t("images"))
    for h in hooks:
        h.remove()
    return {k: v.numpy() for k, v in out.items()}, gold


def _check(name, got, gold):
    ref = gold[name]
    assert got.shape == ref.shape, name
    if name.endswith("_mask"):  # masks are exact
        np.testing.assert_array_equal(got, ref, err_msg=name)
        return 0.0, 0.0
    max_abs = float(np.abs(got - ref).max())
    rel_l2 = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    if "logits" in name:
        assert max_abs <= 2e-5, f"{name}: max-abs {max_abs:.2e}"
    else:
        assert rel_l2 <= 5e-5, f"{name}: rel-L2 {rel_l2:.2e}"
        assert max_abs <= 1e-4 * max(1.0, float(np.abs(ref).max())), f"{name}: max-abs {max_abs:.2e}"
    return max_abs, rel_l2


_OUTPUTS = [
    "ws_psi1",
    "ws_psi05",
    "img_stg1",
    "img",
    "d_logits",
    "d_logits_stg1",
    "d_real_logits",
    "d_real_logits_stg1",
]
_INTERMEDIATES = [
    "h_stg1_conv_first_mask",
    "h_stg1_enc_conv0_mask",
    "h_stg1_tran0_mask",
    "h_stg1_tran1_mask",
    "h_stg1_tran2_x",
    "h_stg1_ws_style",
    "h_stg1_to_square",
    "h_stg1_to_style",
    "h_enc_f16",
    "h_syn_to_square",
    "h_syn_to_style",
    "h_dec_16x16_img",
    "h_dec_32x32_img",
    "h_dec_64x64_img",
    "h_dec_img_raw",
    "h_d_fake_Dis_out",
    "h_d_fake_Dis_stg1_out",
    "h_d_real_Dis_out",
    "h_d_real_Dis_stg1_out",
]


@pytest.fixture(scope="module")
def golden_256(golden_dir):
    return _run_golden(golden_dir, 256)


@pytest.mark.parametrize("name", _OUTPUTS + _INTERMEDIATES)
def test_parity_256(golden_256, name):
    got, gold = golden_256
    _check(name, got[name], gold)


def test_composite_keeps_known_pixels(golden_256):
    got, gold = golden_256
    known = gold["masks"] == 1
    for name in ("img", "img_stg1"):
        np.testing.assert_array_equal(np.where(known, got[name], 0), np.where(known, gold["images"], 0))


@pytest.mark.slow
def test_parity_512(golden_dir):
    got, gold = _run_golden(golden_dir, 512)
    for name in _OUTPUTS + _INTERMEDIATES:
        _check(name, got[name], gold)


# ----------------------------------------------------------------------------------------------------------
# Exported weights load strictly; noise modes


def test_exported_pt_loads_strict(tmp_path, golden_dir):
    make_params = _load_make_params(golden_dir)
    state = make_params(golden_dir / "keys_G_256.json")
    path = tmp_path / "G_ema.pt"
    write_checkpoint(path, {"G_ema": state})
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    twin = _twin("G", 256)
    result = twin.load_state_dict(loaded, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert list(loaded) == list(twin.state_dict())
    for k, v in twin.state_dict().items():
        assert v.dtype == torch.float32 and np.array_equal(v.numpy(), state[k]), k


def test_style_conv_noise_modes():
    torch.manual_seed(0)
    conv = StyleConv(4, 3, style_dim=5, resolution=8)
    with torch.no_grad():
        conv.noise_strength.fill_(0.5)
    x, s = torch.randn(2, 4, 8, 8), torch.randn(2, 5)
    with torch.no_grad():
        y = conv.conv(x, s)
        none = conv(x, s, noise_mode="none")
        const = conv(x, s, noise_mode="const")
        rand = conv(x, s, noise_mode="random")
    lrelu = lambda v: torch.nn.functional.leaky_relu(v + conv.bias[None, :, None, None], 0.2) * math.sqrt(2)  # noqa: E731
    torch.testing.assert_close(none, lrelu(y), rtol=0, atol=0)
    torch.testing.assert_close(const, lrelu(y + 0.5 * conv.noise_const), rtol=0, atol=0)
    assert not torch.equal(rand, const) and not torch.equal(rand, none)
    with pytest.raises(ValueError, match="noise_mode"):
        conv(x, s, noise_mode="off")


# ----------------------------------------------------------------------------------------------------------
# ONNX


@pytest.mark.slow
def test_onnx_export_matches_torch(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from mat_jax.torch_twin.onnx_export import GeneratorForOnnx, example_inputs

    torch.manual_seed(0)
    g = Generator(img_resolution=128).eval()
    path = tmp_path / "g128.onnx"
    write_checkpoint(path, {"G_ema": {k: v.numpy() for k, v in g.state_dict().items()}})  # the .onnx handler
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g128.onnx", "g128.onnx.data"]
    inputs = list(example_inputs(128))
    inputs[0] = torch.randn_like(inputs[0]).clamp(-1, 1)
    inputs[2] = torch.randn_like(inputs[2])
    inputs[3] = (torch.rand_like(inputs[3]) > 0.5).float()
    inputs[4] = (torch.rand_like(inputs[4]) > 0.5).float()
    sess = ort.InferenceSession(str(path))
    outs = sess.run(None, {n.name: x.numpy() for n, x in zip(sess.get_inputs(), inputs, strict=True)})
    with torch.no_grad():
        ref = GeneratorForOnnx(g)(*inputs)
    for o, r in zip(outs, ref, strict=True):
        r = r.numpy()
        assert np.linalg.norm(o - r) / np.linalg.norm(r) < 1e-4
