"""The official MAT recipe numbers: Adam lazy-reg scaling, EMA beta, phase schedule, gradient sanitising, loss
formulas, R1 (vs per-branch gradients and finite differences), VGG19 import and PCP vs PyTorch."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict
from model_configs import TINY
from train_helpers import REPO

from mat_jax.config import load_config
from mat_jax.models.config import MATConfig
from mat_jax.train import losses, optim, steps, vgg
from mat_jax.weights.layout import abstract_variables, official_name


def test_adam_lazy_reg_scaling_equals_readme_numbers():
    g, d = optim.optimizers_from_config(load_config(REPO / "configs" / "places512.py").optimizer)
    assert g.lr == pytest.approx(8.0e-4, rel=1e-12) and g.b1 == 0.0
    assert g.b2 == pytest.approx(0.991992, abs=1e-6) and g.eps == 1e-8 and g.reg_interval == 4
    assert d.lr == pytest.approx(9.4118e-4, abs=1e-8) and d.b1 == 0.0
    assert d.b2 == pytest.approx(0.990585, abs=1e-6) and d.reg_interval == 16
    # cfg default lrate 0.002 (spec 5.2): G 1.6e-3, D 1.88235e-3
    assert optim.lazy_reg_adam(0.002, (0.0, 0.99), 1e-8, 4).lr == pytest.approx(1.6e-3)
    assert optim.lazy_reg_adam(0.002, (0.0, 0.99), 1e-8, 16).lr == pytest.approx(1.88235e-3, abs=1e-8)
    assert optim.lazy_reg_adam(0.002, (0.5, 0.99), 1e-8, None).b1 == 0.5  # no lazy reg: unscaled


def test_optax_adam_equals_torch_adam_with_scaled_betas():
    torch = pytest.importorskip("torch")
    s = optim.lazy_reg_adam(0.001, (0.0, 0.99), 1e-8, 16)
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(5).astype(np.float32)
    grads = [rng.standard_normal(5).astype(np.float32) for _ in range(4)]
    tp = torch.nn.Parameter(torch.tensor(p0))
    topt = torch.optim.Adam([tp], lr=s.lr, betas=(s.b1, s.b2), eps=s.eps)
    tx = s.make()
    p, st = jnp.asarray(p0), tx.init(jnp.asarray(p0))
    for g in grads:
        tp.grad = torch.tensor(g)
        topt.step()
        upd, st = tx.update(jnp.asarray(g), st, p)
        p = p + upd
    np.testing.assert_allclose(np.asarray(p), tp.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_transformer_group_is_the_official_lrt_filter(golden_dir):
    """--lrt's parameter group: every G parameter whose official name contains 'tran'/'Tran', nothing else."""
    keys = json.loads((golden_dir / "keys_G_256.json").read_text())
    expected = {
        e["name"] for e in keys["entries"] if e["kind"] == "parameter" and ("tran" in e["name"] or "Tran" in e["name"])
    }
    labels = optim.transformer_labels(abstract_variables(MATConfig(resolution=256), "G")["params"])
    got = {official_name(path) for path, label in flatten_dict(labels).items() if label == "transformer"}
    assert len(expected) > 100 and got == expected


def test_lr_transformer_gives_the_transformer_group_its_own_first_step():
    """First Adam step with beta1 = 0 moves every entry by the group's lr (gradient sign times lr)."""
    config = load_config(REPO / "configs" / "places512.py", ["optimizer.g_lr_transformer=0.0005"])
    g, d = optim.optimizers_from_config(config.optimizer)
    assert g.lr_transformer == pytest.approx(0.0005 * 4 / 5) and d.lr_transformer is None
    rng = np.random.default_rng(0)
    params = jax.tree.map(
        lambda x: jnp.asarray(rng.standard_normal(x.shape, np.float32)), abstract_variables(TINY, "G")["params"]
    )
    grads = jax.tree.map(
        lambda x: jnp.asarray(rng.choice([-1.0, 1.0], x.shape) * rng.uniform(0.5, 2.0, x.shape)), params
    )  # |g| >> eps
    tx = g.make()
    updates, _ = tx.update(grads, tx.init(params), params)
    labels = flatten_dict(optim.transformer_labels(params))
    seen = set()
    for path, u in flatten_dict(updates).items():
        lr = g.lr_transformer if labels[path] == "transformer" else g.lr
        np.testing.assert_allclose(np.abs(np.asarray(u)), lr, rtol=1e-4, err_msg="/".join(path))
        seen.add(labels[path])
    assert seen == {"base", "transformer"}


def test_ema_beta_official_half_life_and_ramp():
    cfg = MATConfig(resolution=32, stage1_token_res=16, conv="custom")
    r32 = steps.Recipe(model=cfg, global_batch=32, ema_kimg=10)
    assert float(steps.ema_beta(r32, 123)) == pytest.approx(0.997784, abs=1e-6)
    r64 = steps.Recipe(model=cfg, global_batch=64, ema_kimg=10)
    assert float(steps.ema_beta(r64, 0)) == pytest.approx(0.995574, abs=1e-6)
    ramp = steps.Recipe(model=cfg, global_batch=32, ema_kimg=10, ema_rampup=0.05)
    assert float(steps.ema_beta(ramp, 0)) == 0.0  # nothing seen yet: G_ema <- G
    # after 100 iterations: ema_nimg = min(10000, 3200 * 0.05) = 160
    assert float(steps.ema_beta(ramp, 100)) == pytest.approx(0.5 ** (32 / 160), rel=1e-6)


def test_phase_schedule_r1_every_16th_iteration():
    r = steps.Recipe(model=MATConfig(resolution=32, stage1_token_res=16, conv="custom"), global_batch=4)
    sched = {i: steps.phases(i, r) for i in range(40)}
    assert [i for i, p in sched.items() if "Dreg" in p] == [0, 16, 32]
    assert [i for i, p in sched.items() if "Greg" in p] == list(range(0, 40, 4))
    assert all(p[0] == "Gmain" and "Dmain" in p for p in sched.values())
    no_r1 = steps.Recipe(model=r.model, global_batch=4, r1_gamma=0.0)
    assert not any("Dreg" in steps.phases(i, no_r1) for i in range(40))


def test_sanitize_grads_like_official():
    g = {"a": jnp.array([jnp.nan, jnp.inf, -jnp.inf, 2.0])}
    np.testing.assert_array_equal(np.asarray(optim.sanitize_grads(g)["a"]), [0.0, 1e5, -1e5, 2.0])


def test_adversarial_losses_vs_numpy():
    rng = np.random.default_rng(1)
    f, f1, r, r1 = (rng.standard_normal((6, 1)).astype(np.float32) * 3 for _ in range(4))
    sp = lambda t: np.log1p(np.exp(t))
    g, g1 = losses.g_adversarial(f), losses.g_adversarial(f1)
    np.testing.assert_allclose([g, g1], [sp(-f).mean(), sp(-f1).mean()], rtol=1e-6)
    d, d1 = losses.d_adversarial(f, r), losses.d_adversarial(f1, r1)
    np.testing.assert_allclose([d, d1], [sp(f).mean() + sp(-r).mean(), sp(f1).mean() + sp(-r1).mean()], rtol=1e-6)


@pytest.fixture(scope="module")
def tiny_d():
    from mat_jax.models import Discriminator

    cfg = MATConfig(
        resolution=32, stage1_token_res=16, channel_base=256, channel_max=16, mbstd_group_size=2, conv="custom"
    )
    d = Discriminator(cfg)
    x = jnp.zeros((4, 32, 32, 3))
    m = jnp.ones((4, 32, 32, 1))
    return cfg, d, d.init(jax.random.key(0), x, m, x)["params"]


def test_r1_loss_gain_and_per_branch_gradients(tiny_d):
    cfg, d, params = tiny_d
    rng = np.random.default_rng(2)
    images = jnp.asarray(rng.uniform(-1, 1, (4, 32, 32, 3)), jnp.float32)
    masks = jnp.asarray(rng.uniform(size=(4, 32, 32, 1)) > 0.3, jnp.float32)
    recipe = steps.Recipe(model=cfg, global_batch=4, r1_gamma=10.0, d_reg_interval=16, mbstd_shards=1)
    total, m = jax.jit(lambda p: steps.r1_loss(recipe, p, {"image": images, "mask": masks}))(params)

    # reference: each branch's gradient separately, w.r.t. its own copy of the real image
    def branch(i, x):
        out = d.apply({"params": params}, x if i == 0 else images, masks, x if i == 1 else images)
        return jnp.sum(out[i])

    g0 = jax.grad(lambda x: branch(0, x))(images)
    g1 = jax.grad(lambda x: branch(1, x))(images)
    r1 = np.sum(np.square(np.asarray(g0)), axis=(1, 2, 3))
    r1_s1 = np.sum(np.square(np.asarray(g1)), axis=(1, 2, 3))
    np.testing.assert_allclose(float(m["R1/penalty"]), r1.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(m["R1/penalty_s1"]), r1_s1.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(total), 16 * np.mean((r1 + r1_s1) * 10 / 2), rtol=1e-5)  # x interval 16

    # the gradient itself vs a central finite difference along a random direction (small step: lrelu kinks)
    v = jnp.asarray(rng.standard_normal(images.shape), jnp.float32)
    eps = 1e-3
    fd = (branch(0, images + eps * v) - branch(0, images - eps * v)) / (2 * eps)
    np.testing.assert_allclose(float(fd), float(jnp.sum(g0 * v)), rtol=2e-2)


def _torch_vgg_features(torch, widths):
    """torchvision's vgg19().features layout (indices 0..36), built with plain torch.nn."""
    layers, c_in = [], 3
    for s, n in enumerate(vgg.STAGE_CONVS):
        for _ in range(n):
            layers += [torch.nn.Conv2d(c_in, widths[s], 3, padding=1), torch.nn.ReLU(inplace=True)]
            c_in = widths[s]
        layers.append(torch.nn.MaxPool2d(2, 2))
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_vgg19_import_and_pcp_match_torch(tmp_path, fmt):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    widths = (8, 8, 16, 16, 16)
    feats = _torch_vgg_features(torch, widths).eval()
    sd = {f"features.{k}": v for k, v in feats.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full vgg19 state_dict are ignored
    path = tmp_path / f"vgg19.{fmt}"
    if fmt == "pth":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file

        save_file(sd, str(path))
    params = vgg.load_vgg19_params(path)
    assert vgg.widths_from_params(params) == widths

    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    y = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)

    def torch_feats(img):  # official VGGFeatureExtractor: (x+1)/2, ImageNet norm, clone before the ReLU
        t = (torch.tensor(img).permute(0, 3, 1, 2) + 1) * 0.5
        t = (t - torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(vgg.IMAGENET_STD).view(1, 3, 1, 1)
        out = {}
        for i, layer in enumerate(feats):
            t = layer(t)
            if i in (25, 34):
                out[i] = t.clone()
            if i == 34:
                break
        return out

    with torch.no_grad():
        tx, ty = torch_feats(x), torch_feats(y)
    fx = vgg.VGG19Features(widths).apply({"params": params}, (jnp.asarray(x) + 1) * 0.5)
    np.testing.assert_allclose(np.asarray(fx["conv4_4"]), tx[25].permute(0, 2, 3, 1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(fx["conv5_4"]), tx[34].permute(0, 2, 3, 1).numpy(), rtol=1e-4, atol=1e-5)
    ref = 0.25 * torch.nn.functional.l1_loss(tx[25], ty[25]) + 0.5 * torch.nn.functional.l1_loss(tx[34], ty[34])
    np.testing.assert_allclose(float(losses.perceptual(params, x, y)), float(ref), rtol=1e-4)


def test_vgg19_import_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vgg_weights"):
        vgg.load_vgg19_params(tmp_path / "missing.pth")
    from safetensors.numpy import save_file

    save_file({"features.0.weight": np.zeros((4, 3, 3, 3), np.float32)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match=r"missing features.0 \(conv1_1\)"):
        vgg.load_vgg19_params(tmp_path / "bad.safetensors")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="unsupported VGG19 weights format"):
        vgg.load_vgg19_params(tmp_path / "w.npz")
