"""File formats: bit-exact round trips, dtype export, multi-net files, clear errors, atomic writes, CLI."""

from __future__ import annotations

import collections
import importlib.util
import os
import sys

import numpy as np
import pytest

from mat_jax import cli
from mat_jax.convert import formats
from mat_jax.convert.errors import ConversionError, MissingTorchError
from mat_jax.convert.formats import read_checkpoint, write_checkpoint

FORMATS = {"safetensors": ".safetensors", "pt": ".pt", "npz": ".npz"}


@pytest.fixture(scope="module")
def make_params(golden_dir):
    spec = importlib.util.spec_from_file_location("golden_make_params", golden_dir / "make_params.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cache = {}

    def get(net: str, res: int):
        if (net, res) not in cache:
            cache[(net, res)] = mod.make_params(golden_dir / f"keys_{net}_{res}.json")
        return cache[(net, res)]

    return get


def _assert_identical(got, want):
    assert list(got) == list(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        assert got[k].tobytes() == v.tobytes(), k  # bit-exact, also for -0.0 / NaN patterns


# ----------------------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("net", ["G", "D"])
@pytest.mark.parametrize("res", [256, 512])
def test_round_trip_bit_exact(tmp_path, make_params, fmt, net, res):
    state = make_params(net, res)
    path = tmp_path / f"{net}_{res}{FORMATS[fmt]}"
    write_checkpoint(path, {net: state})
    ckpt = read_checkpoint(path)
    assert ckpt.resolution == res and list(ckpt.nets) == [net]
    _assert_identical(ckpt.nets[net], state)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


@pytest.mark.parametrize(
    "dtype,fmt",
    [
        ("float16", "safetensors"),
        ("float32", "safetensors"),
        ("bfloat16", "safetensors"),
        ("bfloat16", "pt"),
        ("bfloat16", "npz"),
    ],
)
def test_dtype_export(tmp_path, make_params, dtype, fmt):
    import ml_dtypes

    state = make_params("D", 256)
    path = tmp_path / f"d{FORMATS[fmt]}"
    write_checkpoint(path, {"D": state}, dtype=dtype)
    got = read_checkpoint(path, nets=("D",)).nets["D"]
    target = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    for k, v in state.items():
        if k.endswith(".resample_filter"):  # the official upfirdn2d asserts float32 filters
            assert got[k].dtype == np.float32
            np.testing.assert_array_equal(got[k], v)
        else:
            assert got[k].dtype == target, k
            assert got[k].tobytes() == v.astype(target).tobytes(), k


def test_multi_net_file_uses_prefixes(tmp_path, make_params):
    from safetensors import safe_open

    g, d = make_params("G", 256), make_params("D", 256)
    path = tmp_path / "both.safetensors"
    write_checkpoint(path, {"G_ema": g, "D": d})
    with safe_open(path, framework="np") as f:
        keys = set(f.keys())
        meta = f.metadata()
    assert keys == {f"G_ema.{k}" for k in g} | {f"D.{k}" for k in d}
    assert meta["nets"] == "G_ema,D" and meta["resolution"] == "256"
    both = read_checkpoint(path)
    assert list(both.nets) == ["G_ema", "D"]
    _assert_identical(both.nets["G_ema"], g)
    _assert_identical(read_checkpoint(path, nets=("D",)).nets["D"], d)
    with pytest.raises(ConversionError, match=r"has no net 'G'.*G_ema, D"):
        read_checkpoint(path, nets=("G",))


def test_single_generator_serves_g_and_g_ema(tmp_path, make_params):
    g = make_params("G", 256)
    path = tmp_path / "g.npz"
    write_checkpoint(path, {"G_ema": g})
    assert list(read_checkpoint(path, nets=("G_ema",)).nets) == ["G_ema"]
    assert list(read_checkpoint(path, nets=("G",)).nets) == ["G"]
    with pytest.raises(ConversionError, match=r"has no net 'D' \(it holds: G\)"):
        read_checkpoint(path, nets=("D",))


def test_nested_pt_dict_is_read(tmp_path, make_params):
    torch = pytest.importorskip("torch")
    d = make_params("D", 256)
    path = tmp_path / "nested.pth"
    torch.save({"D": {k: torch.from_numpy(v) for k, v in d.items()}}, path)
    _assert_identical(read_checkpoint(path).nets["D"], d)


# ----------------------------------------------------------------------------------------------------------
# Errors


def _write_raw(path, state):
    formats.handler_for(path).write(str(path), collections.OrderedDict(state), {})


def test_wrong_resolution(tmp_path, make_params):
    path = tmp_path / "g256.safetensors"
    write_checkpoint(path, {"G": make_params("G", 256)})
    with pytest.raises(ConversionError, match=rf"{path}: holds a resolution-256 G .*Dec_256x256.*512 was requested"):
        read_checkpoint(path, resolution=512)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_missing_unexpected_and_misshaped_keys_are_all_named(tmp_path, make_params, fmt):
    state = dict(make_params("D", 256))
    del state["fc1.bias"], state["Dis.3.conv0.resample_filter"]
    state["fc2.weight"] = np.zeros((1, 2), np.float32)
    state["fc0.weight"] = np.zeros((512, 4096), np.float32)
    path = tmp_path / f"bad{FORMATS[fmt]}"
    _write_raw(path, state)
    with pytest.raises(ConversionError) as err:
        read_checkpoint(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: does not match the official D layout at resolution 256")
    assert "2 missing: " in msg and "fc1.bias" in msg and "Dis.3.conv0.resample_filter" in msg
    assert "1 unexpected: fc2.weight" in msg
    assert "fc0.weight: expected [512, 8192], found [512, 4096]" in msg


def test_write_refuses_invalid_state_and_leaves_nothing(tmp_path, make_params):
    state = dict(make_params("D", 256))
    del state["fc1.bias"]
    path = tmp_path / "out.safetensors"
    with pytest.raises(ConversionError, match=r"(?s)net D: .*1 missing: fc1\.bias"):
        write_checkpoint(path, {"D": state})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_truncated_file(tmp_path, make_params, fmt):
    path = tmp_path / f"d{FORMATS[fmt]}"
    write_checkpoint(path, {"D": make_params("D", 256)})
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ConversionError, match=rf"^{path}: .*(truncated|cannot read)"):
        read_checkpoint(path)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt", ".pkl"])
def test_not_a_checkpoint(tmp_path, suffix):
    path = tmp_path / f"readme{suffix}"
    path.write_text("this is a text file, not weights\n" * 20)
    with pytest.raises(ConversionError, match=rf"^{path}: "):
        read_checkpoint(path)


def test_unrelated_arrays_fit_no_layout(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, **{"encoder.conv.weight": np.zeros((3, 3)), "head.bias": np.zeros(2)})
    with pytest.raises(ConversionError, match=rf"{path}: fits no known MAT layout.*2 keys.*encoder\.\*"):
        read_checkpoint(path)


def test_unknown_extension_and_directory(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(ConversionError, match=r"w\.bin: unknown checkpoint extension"):
        read_checkpoint(tmp_path / "w.bin")

    with pytest.raises(ConversionError, match="not a mat-jax checkpoint directory"):
        read_checkpoint(tmp_path)
    with pytest.raises(ConversionError, match="unknown format 'tflite'"):
        formats.handler_for("x.bin", "tflite")


def test_mixed_prefixes_rejected(tmp_path, make_params):
    d = make_params("D", 256)
    state = {f"D.{k}": v for k, v in d.items()}
    state["fc9.weight"] = np.zeros(1, np.float32)
    path = tmp_path / "mixed.npz"
    _write_raw(path, state)
    with pytest.raises(ConversionError, match=r"mixes prefixed nets \(D\) with un-prefixed keys such as 'fc9"):
        read_checkpoint(path)


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, make_params, monkeypatch):
    d = make_params("D", 256)
    path = tmp_path / "d.npz"
    write_checkpoint(path, {"D": d})
    before = path.read_bytes()

    def boom(f, **arrays):
        f.write(b"partial output")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(path, {"D": d}, dtype="float16")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]


def test_pt_without_torch_names_the_extra(tmp_path, make_params, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(MissingTorchError, match=r"pip install 'mat-jax\[torch\]'"):
        write_checkpoint(tmp_path / "d.pt", {"D": make_params("D", 256)})
    assert list(tmp_path.iterdir()) == []


def test_pkl_is_import_only(tmp_path, make_params):
    with pytest.raises(ConversionError, match="import-only"):
        write_checkpoint(tmp_path / "x.pkl", {"D": make_params("D", 256)})


# ----------------------------------------------------------------------------------------------------------
# CLI


def _run_cli(argv):
    return cli.main(["convert", *argv])


def test_cli_convert_and_errors(tmp_path, make_params, capsys):
    src = tmp_path / "d.npz"
    write_checkpoint(src, {"D": make_params("D", 256)})
    dst = tmp_path / "d.safetensors"
    assert _run_cli([str(src), str(dst), "--net", "D", "--dtype", "bfloat16"]) == 0
    assert "D at 256x256, 116 entries" in capsys.readouterr().out
    assert read_checkpoint(dst).nets["D"]["fc0.weight"].dtype.name == "bfloat16"
    assert _run_cli([str(src), str(tmp_path / "out.npz"), "--net", "D", "--resolution", "512"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mat-jax convert: error: ") and str(src) in err and "512 was requested" in err
    assert _run_cli([str(src), str(tmp_path / "out.npz")]) == 1  # default --net G_ema: not in a D file
    assert "has no net 'G_ema' (it holds: D)" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out.npz")
    assert _run_cli([str(src), str(tmp_path / "all.pt"), "--net", "all"]) == 0
    assert list(read_checkpoint(tmp_path / "all.pt").nets) == ["D"]
