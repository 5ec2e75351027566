"""The JAX model and the PyTorch twin agree on random weights and random inputs (no golden data needed).

Both load the same official-layout state dict (the JAX side through `mat_jax.weights.layout`), get
the same images, masks, z, truncation and style-manipulation maps, and must agree to float32
rounding (same tolerance as the golden tests; see tests/golden_utils.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from golden_utils import assert_close, nchw, nhwc  # noqa: E402

from mat_jax.models import Discriminator, Generator, MATConfig  # noqa: E402
from mat_jax.models.constants import resample_filter, shifted_window_mask  # noqa: E402
from mat_jax.models.generator import smm_shapes  # noqa: E402
from mat_jax.torch_twin import Discriminator as TwinD  # noqa: E402
from mat_jax.torch_twin import Generator as TwinG  # noqa: E402
from mat_jax.weights.layout import build_table, constant_value, official_table, official_to_variables  # noqa: E402

RES = 128


def random_state(net: str, res: int, seed: int, cfg: MATConfig | None = None) -> dict[str, np.ndarray]:
    """Random official-layout weights scaled so activations stay O(1) (not the golden rule's values); with `cfg`,
    for that architecture's layout table."""
    rng = np.random.default_rng(seed)
    out = {}
    if cfg is None:
        entries = [(e.official, tuple(e.shape), None) for e in build_table(MATConfig(resolution=res), net)]
    else:
        entries = [(e.official, tuple(e.shape), e) for e in build_table(cfg, net)]
    for name, shape, entry in entries:
        last = name.rsplit(".", 1)[-1]
        x = rng.standard_normal(shape)
        if entry is not None and entry.collection == "constant":
            v = constant_value(entry, cfg)
        elif last == "resample_filter":
            v = resample_filter()
        elif last == "attn_mask":
            ws = int(round(shape[1] ** 0.5))
            size = int(round(shape[0] ** 0.5)) * ws
            v = shifted_window_mask(size, size, ws, ws // 2)
        elif name.startswith("mapping.fc"):
            v = x / 0.01 if last == "weight" else 0.1 * x / 0.01
        elif ".affine." in name:
            v = x if last == "weight" else 1.0 + 0.1 * x
        elif "toRGB.conv.weight" in name:
            v = 0.1 * x
        elif last == "noise_strength":
            v = np.full(shape, rng.uniform(-0.2, 0.2))
        elif last in ("w_avg",):
            v = 0.1 * x
        elif last == "bias":
            v = 0.1 * x
        else:
            v = x
        out[name] = np.asarray(v, np.float32)
    return out


def _twin(cls, state):
    m = cls(img_resolution=RES)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return m.eval()


@pytest.fixture(scope="module")
def both():
    cfg = MATConfig(resolution=RES)
    g_state, d_state = random_state("G", RES, 1), random_state("D", RES, 2)
    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, (2, RES, RES, 3)).astype(np.float32)
    masks = np.ones((2, RES, RES, 1), np.float32)
    masks[0, 10:90, 20:70] = 0
    masks[1, 40:128, 0:100] = 0
    z = rng.standard_normal((2, 512)).astype(np.float32)
    s1, s2 = smm_shapes(cfg, 2)
    map1 = (rng.uniform(size=s1) < 0.5).astype(np.float32)
    map2 = (rng.uniform(size=s2) < 0.5).astype(np.float32)
    g = Generator(cfg)
    vg = official_to_variables(g_state, cfg, "G")
    ws = g.apply(vg, jnp.asarray(z), None, 0.7, method=Generator.map)
    final, stage1, _ = jax.jit(lambda v, i, m, w, mp: g.apply(v, i, m, w, "const", mp, method=Generator.synthesize))(
        vg, images, masks, ws, (map1, map2)
    )
    d = Discriminator(cfg)
    logits = d.apply(official_to_variables(d_state, cfg, "D"), jnp.asarray(images), jnp.asarray(masks), final)
    with torch.no_grad():
        tg = _twin(TwinG, g_state)
        t_final, t_stage1 = tg(
            torch.from_numpy(nchw(images)),
            torch.from_numpy(nchw(masks)),
            torch.from_numpy(z),
            truncation_psi=0.7,
            skip_w_avg_update=True,
            noise_mode="const",
            return_stg1=True,
            smm_maps=(torch.from_numpy(map1), torch.from_numpy(nchw(map2).copy())),
        )
        t_logits = _twin(TwinD, d_state)(
            torch.from_numpy(nchw(images)),
            torch.from_numpy(nchw(masks)),
            torch.from_numpy(nchw(np.asarray(final)).copy()),
        )
    return (final, stage1, logits), (t_final.numpy(), t_stage1.numpy(), [t.numpy() for t in t_logits])


def test_generator_agrees(both):
    (final, stage1, _), (t_final, t_stage1, _) = both
    assert_close("stage1", stage1, nhwc(t_stage1))
    assert_close("final", final, nhwc(t_final))
    assert 1e-2 < float(np.std(np.asarray(final))) < 1e2  # a meaningful, non-degenerate output


def test_discriminator_agrees(both):
    (_, _, logits), (_, _, t_logits) = both
    assert_close("logit", logits[0], t_logits[0], rel_l2=1e-4, max_rel=1e-4)
    assert_close("logit_stg1", logits[1], t_logits[1], rel_l2=1e-4, max_rel=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# The twin built from a MATConfig: the official-architecture family (tiny widths, other resolutions, switches)

from mat_jax.config import load_config, model_config  # noqa: E402

TINY_CFG = model_config(load_config("configs/tiny.py"))
FAMILY = {
    "tiny64": TINY_CFG,
    "micro32_masked1_unshifted": TINY_CFG.replace(
        resolution=32,
        stage1_token_res=16,
        stage1_masked_layers=1,
        shifted_windows=False,
        z_dim=16,
        w_dim=16,
        mapping_layers=1,
    ),
    "tiny64_no_smm_mbstd2": TINY_CFG.replace(style_manipulation=False, mbstd_num_channels=2, stage1_mlp_ratio=3.0),
}


@pytest.mark.parametrize("name", list(FAMILY))
def test_twin_from_config_agrees(name):
    cfg = FAMILY[name]
    r, b = cfg.resolution, 2
    g_state, d_state = random_state("G", r, 11, cfg), random_state("D", r, 12, cfg)
    rng = np.random.default_rng(13)
    images = rng.uniform(-1, 1, (b, r, r, 3)).astype(np.float32)
    masks = np.ones((b, r, r, 1), np.float32)
    masks[0, r // 8 : r // 2, r // 4 : 3 * r // 4] = 0
    masks[1, r // 3 :, : r // 2] = 0
    z = rng.standard_normal((b, cfg.z_dim)).astype(np.float32)
    s1, s2 = smm_shapes(cfg, b)
    map1 = (rng.uniform(size=s1) < 0.5).astype(np.float32)
    map2 = (rng.uniform(size=s2) < 0.5).astype(np.float32)
    g, d = Generator(cfg), Discriminator(cfg)
    vg = official_to_variables(g_state, cfg, "G")
    ws = g.apply(vg, jnp.asarray(z), None, 0.7, method=Generator.map)
    final, stage1, _ = jax.jit(lambda v, i, m, w, mp: g.apply(v, i, m, w, "const", mp, method=Generator.synthesize))(
        vg, images, masks, ws, (map1, map2)
    )
    logits = jax.jit(d.apply)(official_to_variables(d_state, cfg, "D"), jnp.asarray(images), jnp.asarray(masks), final)
    tg, td = TwinG.from_config(cfg).eval(), TwinD.from_config(cfg).eval()
    assert {k: tuple(v.shape) for k, v in tg.state_dict().items()} == {k: v.shape for k, v in g_state.items()}
    assert {k: tuple(v.shape) for k, v in td.state_dict().items()} == {k: v.shape for k, v in d_state.items()}
    tg.load_state_dict({k: torch.from_numpy(v) for k, v in g_state.items()}, strict=True)
    td.load_state_dict({k: torch.from_numpy(v) for k, v in d_state.items()}, strict=True)
    with torch.no_grad():
        t_final, t_stage1 = tg(
            torch.from_numpy(nchw(images)),
            torch.from_numpy(nchw(masks)),
            torch.from_numpy(z),
            truncation_psi=0.7,
            skip_w_avg_update=True,
            noise_mode="const",
            return_stg1=True,
            smm_maps=(torch.from_numpy(map1), torch.from_numpy(nchw(map2).copy())),
        )
        t_logits = td(
            torch.from_numpy(nchw(images)),
            torch.from_numpy(nchw(masks)),
            torch.from_numpy(nchw(np.asarray(final)).copy()),
        )
    assert_close("stage1", stage1, nhwc(t_stage1.numpy()))
    assert_close("final", final, nhwc(t_final.numpy()))
    assert 1e-2 < float(np.std(np.asarray(final))) < 1e2
    assert_close("logit", logits[0], t_logits[0].numpy(), rel_l2=1e-4, max_rel=1e-4)
    assert_close("logit_stg1", logits[1], t_logits[1].numpy(), rel_l2=1e-4, max_rel=1e-4)


@pytest.mark.parametrize("field, value", [("block", "prenorm_residual")])  # attention, mask_update, c_dim: built
def test_twin_refuses_switches_it_does_not_implement(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        TwinG.from_config(TINY_CFG.replace(**{field: value}))
    with pytest.raises(ValueError, match=field):
        TwinD.from_config(TINY_CFG.replace(**{field: value}))


# ---------------------------------------------------------------------------------------------------------------
# JAX-initialised variables -> variables_to_official -> twin (strict): the export direction, conditional included

from flax.traverse_util import flatten_dict, unflatten_dict  # noqa: E402

import mat_jax.torch_twin as torch_twin  # noqa: E402
from mat_jax.weights.layout import variables_to_official  # noqa: E402

_R32 = dict(resolution=32, stage1_token_res=16)
EXPORT_FAMILY = {
    "tiny64": TINY_CFG,
    "tiny32": TINY_CFG.replace(**_R32),
    "tiny64_cond3": TINY_CFG.replace(c_dim=3),
    # conditional + the cheap ablations + other widths/depths/mapping/mbstd numbers, at 32 px
    "tiny32_cond2_window_attention": TINY_CFG.replace(
        **_R32,
        c_dim=2,
        attention="window",
        stage1_dim=18,
        stage1_heads=3,
        stage1_mlp_ratio=1.5,
        stage1_depths=(1, 2, 1, 2, 1),
        mapping_layers=3,
        mapping_lr_multiplier=0.1,
        mbstd_group_size=0,
        mbstd_num_channels=2,
    ),
    "tiny32_full_attention_static_mask": TINY_CFG.replace(
        **_R32, attention="full", mask_update="none", z_dim=8, w_dim=24, channel_max=64
    ),
}


def jax_random_variables(cfg: MATConfig, net: str, seed: int) -> dict:
    """`Generator(cfg).init` / `Discriminator(cfg).init` variables (numpy), with the zero-initialised biases,
    noise strengths and w_avg perturbed (and the affine biases moved off 1) so that a dropped bias, noise or
    truncation path shows in the comparison."""
    r = cfg.resolution
    img, mask = jnp.zeros((1, r, r, cfg.img_channels)), jnp.ones((1, r, r, 1))
    c = jnp.zeros((1, cfg.c_dim)) if cfg.c_dim else None
    keys = {"params": jax.random.key(seed), "smm": jax.random.key(seed + 1), "noise": jax.random.key(seed + 2)}
    if net == "G":  # jitted: an eager init dispatches every op of a full forward one by one (slow)
        variables = jax.jit(Generator(cfg).init)(keys, img, mask, jnp.zeros((1, cfg.z_dim)), c)
    else:
        variables = jax.jit(Discriminator(cfg).init)(keys, img, mask, img, c)
    rng = np.random.default_rng(seed)
    out = {}
    for coll, tree in variables.items():
        flat = {}
        for path, leaf in flatten_dict(jax.device_get(dict(tree))).items():
            leaf = np.asarray(leaf, np.float64)
            if path[-1] == "bias":
                lr = cfg.mapping_lr_multiplier if path[0] == "mapping" and path[1].startswith("fc") else 1.0
                leaf = leaf + 0.1 * rng.standard_normal(leaf.shape) / lr  # stored bias * lr is what runs
            elif path[-1] == "noise_strength":
                leaf = rng.uniform(-0.2, 0.2, leaf.shape)
            elif path[-1] == "w_avg":
                leaf = rng.standard_normal(leaf.shape)
            flat[path] = leaf.astype(np.float32)
        out[coll] = unflatten_dict(flat)
    return out


def _strict_twin(cfg: MATConfig, net: str, variables: dict):
    """build(cfg, net) loaded with variables_to_official(variables, cfg, net), strict=True; eval mode."""
    state = variables_to_official(variables, cfg, net)
    model = torch_twin.build(cfg, net)
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert sorted(got) == sorted((k, tuple(v.shape)) for k, v in state.items())
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return model.eval()


def run_exported_pair(cfg: MATConfig, batch: int = 2, psi: float = 0.7) -> dict:
    """JAX model vs the twin loaded from its exported variables on the same images, masks, z, c, truncation and
    SMM maps: {name: (jax output, twin output)} for ws, stage1, final (NHWC) and the two D logits."""
    r, b = cfg.resolution, batch
    vg, vd = jax_random_variables(cfg, "G", 21), jax_random_variables(cfg, "D", 22)
    rng = np.random.default_rng(23)
    images = rng.uniform(-1, 1, (b, r, r, cfg.img_channels)).astype(np.float32)
    masks = np.ones((b, r, r, 1), np.float32)
    masks[0, r // 8 : r // 2, r // 4 : 3 * r // 4] = 0
    masks[1, r // 3 :, : r // 2] = 0
    z = rng.standard_normal((b, cfg.z_dim)).astype(np.float32)
    c = rng.standard_normal((b, cfg.c_dim)).astype(np.float32) if cfg.c_dim else None
    s1, s2 = smm_shapes(cfg, b)
    map1 = (rng.uniform(size=s1) < 0.5).astype(np.float32)
    map2 = (rng.uniform(size=s2) < 0.5).astype(np.float32)

    g, d = Generator(cfg), Discriminator(cfg)
    ws = g.apply(vg, jnp.asarray(z), None if c is None else jnp.asarray(c), psi, method=Generator.map)
    final, stage1, _ = jax.jit(lambda v, i, m, w, mp: g.apply(v, i, m, w, "const", mp, method=Generator.synthesize))(
        vg, images, masks, ws, (map1, map2)
    )
    logits = jax.jit(d.apply)(vd, jnp.asarray(images), jnp.asarray(masks), final, None if c is None else jnp.asarray(c))

    tg, td = _strict_twin(cfg, "G", vg), _strict_twin(cfg, "D", vd)
    t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.no_grad():
        t_ws = tg.mapping(t(z), t(c), truncation_psi=psi, skip_w_avg_update=True)
        t_final, t_stage1 = tg(
            t(nchw(images)),
            t(nchw(masks)),
            t(z),
            t(c),
            truncation_psi=psi,
            skip_w_avg_update=True,
            noise_mode="const",
            return_stg1=True,
            smm_maps=(t(map1), t(nchw(map2))),
        )
        t_logits = td(t(nchw(images)), t(nchw(masks)), t(nchw(np.asarray(final))), t(c))
    return {
        "ws": (ws, t_ws.numpy()),
        "stage1": (stage1, nhwc(t_stage1.numpy())),
        "final": (final, nhwc(t_final.numpy())),
        "logit": (logits[0], t_logits[0].numpy()),
        "logit_stg1": (logits[1], t_logits[1].numpy()),
    }


@pytest.mark.parametrize("name", list(EXPORT_FAMILY))
def test_exported_jax_variables_run_alike_in_the_twin(name):
    out = run_exported_pair(EXPORT_FAMILY[name])
    for key in ("ws", "stage1", "final"):
        assert_close(key, *out[key])
    assert 1e-2 < float(np.std(np.asarray(out["final"][0]))) < 1e2  # a meaningful, non-degenerate output
    for key in ("logit", "logit_stg1"):
        assert_close(key, *out[key], rel_l2=1e-4, max_rel=1e-4)


def test_conditional_twin_is_in_official_order_and_needs_c():
    """The label paths come where the official modules register them: D's `mapping` before `Dis`, G's
    `mapping.embed` after the mapping's own `w_avg` and before `fc0`; both refuse to run without c."""
    cfg = TINY_CFG.replace(**_R32, c_dim=3)
    g, d = torch_twin.build(cfg, "G"), torch_twin.build(cfg, "D")
    g_names, d_names = list(g.state_dict()), list(d.state_dict())
    mapping = [k for k in g_names if k.startswith("mapping.")]
    assert mapping[:3] == ["mapping.w_avg", "mapping.embed.weight", "mapping.embed.bias"]
    assert mapping[3] == "mapping.fc0.weight" and g.mapping.fc0.weight.shape[1] == cfg.z_dim + cfg.w_dim
    assert d_names[0] == "mapping.embed.weight" and "mapping.w_avg" not in d_names
    assert d.fc1.weight.shape[0] == d.fc1_stg1.weight.shape[0] == d.cmap_dim
    r = cfg.resolution
    img, mask, z = torch.zeros(1, 3, r, r), torch.ones(1, 1, r, r), torch.zeros(1, cfg.z_dim)
    with pytest.raises(ValueError, match="pass c"):
        d(img, mask, img)
    with pytest.raises(ValueError, match="pass c"):
        g.mapping(z)


@pytest.mark.parametrize("res", [256, 512])
def test_from_official_config_is_the_official_layout(res):
    """from_config of the official MATConfig == the hand-written official key list, names, shapes and order."""
    cfg = MATConfig(resolution=res)
    for net in ("G", "D"):
        with torch.device("meta"):
            model = torch_twin.build(cfg, net)
        got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
        assert got == [(e.official, tuple(e.shape)) for e in official_table(net, res)]


def test_build_refuses_unknown_switch_and_net():
    with pytest.raises(ValueError, match="block='prenorm_residual'"):
        torch_twin.build(TINY_CFG.replace(block="prenorm_residual"), "G")
    with pytest.raises(ValueError, match="block"):
        torch_twin.build(TINY_CFG.replace(block="prenorm_residual"), "D")
    with pytest.raises(ValueError, match="net must be"):
        torch_twin.build(TINY_CFG, "E")
