"""The restricted reader of official network pickles: exact import, no torch needed, malicious files refused.

Pickles are written here in the official persistent layout: every twin (custom) module is pickled as a
call of `torch_utils.persistence._reconstruct_persistent_obj(meta)` (a fake module registered in
`sys.modules` only while writing), plain torch modules and tensors the way torch pickles them.
"""

from __future__ import annotations

import builtins
import collections
import json
import os
import pickle
import pickletools
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn as nn

from mat_jax.convert.errors import ConversionError, UnsafePickleError
from mat_jax.convert.pickle_safe import load_official_pickle, load_official_pickle_nets, read_network_pickle
from mat_jax.torch_twin.first_stage import DecStyleBlock
from mat_jax.torch_twin.layers import Conv2dLayerPartial, MappingNet, StyleConv
from mat_jax.torch_twin.transformer import BasicLayer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------------------------
# Writing official-layout pickles


def _fake_reconstruct(meta):  # never called: the file is only read by the restricted unpickler
    raise AssertionError("the fake persistence hook must not run")


class _FakeEasyDict(dict):
    pass


_fake_reconstruct.__module__ = "torch_utils.persistence"
_fake_reconstruct.__qualname__ = _fake_reconstruct.__name__ = "_reconstruct_persistent_obj"
_FakeEasyDict.__module__ = "dnnlib.util"
_FakeEasyDict.__qualname__ = _FakeEasyDict.__name__ = "EasyDict"


class _Root(nn.Module):
    """Stands for a persistent network class (Generator, Discriminator) in the small test nets."""


_TWIN_BASES: tuple = ()


class _OfficialPickler(pickle.Pickler):
    """Pickles twin modules like persistence.persistent_class does; torch modules/tensors as torch does."""

    def reducer_override(self, obj):
        if isinstance(obj, (_Root, *_TWIN_BASES)) or type(obj).__module__.startswith("mat_jax."):
            state = dict(obj.__dict__)
            state["_init_kwargs"] = _FakeEasyDict(resolution=7, mapping_kwargs=_FakeEasyDict())
            state["weight_gain_np"] = np.float64(0.125)  # official gains are numpy scalars
            meta = dict(
                type="class",
                version=6,
                module_src="import os\nos.system('echo pwned')\n",
                class_name=type(obj).__name__,
                state=state,
            )
            return _fake_reconstruct, (meta,)
        return NotImplemented


def write_official_pickle(path, nets: dict, protocol: int = 4) -> None:
    fakes = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": types.ModuleType("dnnlib.util"),
    }
    fakes["torch_utils.persistence"]._reconstruct_persistent_obj = _fake_reconstruct
    fakes["dnnlib.util"].EasyDict = _FakeEasyDict
    assert not (set(fakes) & set(sys.modules)), "a real torch_utils / dnnlib is importable here"
    sys.modules.update(fakes)
    try:
        data = dict(
            training_set_kwargs=_FakeEasyDict(path="x.zip", resolution=256),
            val_set_kwargs={},
            augment_pipe=None,
            **nets,
        )
        with open(path, "wb") as f:
            _OfficialPickler(f, protocol=protocol).dump(data)
    finally:
        for name in fakes:
            del sys.modules[name]


def _small_net(seed: int) -> nn.Module:
    """A few twin modules inside plain torch containers: shifted Swin blocks (attn_mask buffer), a noise
    StyleConv (scalar parameter, noise_const buffer), partial convs (non-persistent buffer), a mapping."""
    torch.manual_seed(seed)
    net = _Root()
    net.tran = nn.ModuleList([BasicLayer(180, [16, 16], 2, 6, 8)])
    net.dec = nn.Sequential(DecStyleBlock(16, 8, 8, 12, False, True, 3), nn.AdaptiveAvgPool2d(1), nn.Softmax(-1))
    net.conv = StyleConv(8, 4, 12, resolution=8, use_noise=True)
    net.partial = Conv2dLayerPartial(4, 4, 3)
    net.mapping = MappingNet(16, 0, 16, 3, num_layers=2)
    net.register_buffer("extra_double", torch.arange(6, dtype=torch.float64).reshape(2, 3))
    net.register_buffer("extra_half", torch.randn(3, 2).half())
    net.register_buffer("extra_bf16", torch.randn(5).bfloat16())
    net.register_buffer("extra_long", torch.arange(4))
    base = torch.randn(4, 6)
    net.register_buffer("extra_view", base.t()[1:, ::2])  # offset + non-contiguous strides into a storage
    net.register_buffer("skipped", torch.ones(2), persistent=False)
    return net


def _np_state(module: nn.Module) -> dict:
    out = collections.OrderedDict()
    for k, v in module.state_dict().items():
        v = v.detach().contiguous()
        out[k] = v.view(torch.uint16).numpy() if v.dtype == torch.bfloat16 else v.numpy().copy()
    return out


def _assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for k in want:
        g = got[k].view(np.uint16) if got[k].dtype.name == "bfloat16" else got[k]
        assert g.dtype == want[k].dtype and g.shape == want[k].shape, k
        np.testing.assert_array_equal(g, want[k], err_msg=k)


@pytest.fixture(scope="module")
def small_nets():
    return {"G": _small_net(1), "D": _small_net(2), "G_ema": _small_net(3)}


# ----------------------------------------------------------------------------------------------------------
# Exact import


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_import_matches_state_dict(tmp_path, small_nets, protocol):
    path = tmp_path / f"net_p{protocol}.pkl"
    write_official_pickle(path, small_nets, protocol)
    ops = {op.name for op, _, _ in pickletools.genops(path.read_bytes())}
    assert ("STACK_GLOBAL" in ops) == (protocol >= 4) and ("GLOBAL" in ops) == (protocol < 4)
    nets = load_official_pickle_nets(path)
    assert list(nets) == ["G", "D", "G_ema"]
    for name, module in small_nets.items():
        _assert_same(nets[name], _np_state(module))
    assert "skipped" not in nets["G"] and not any("weight_maskUpdater" in k for k in nets["G"])
    assert "tran.0.blocks.1.attn_mask" in nets["G"] and "tran.0.blocks.0.attn_mask" not in nets["G"]
    _assert_same(load_official_pickle(path), _np_state(small_nets["G_ema"]))  # default net


def test_records_keep_class_names_not_source(tmp_path, small_nets):
    path = tmp_path / "net.pkl"
    write_official_pickle(path, small_nets)
    data = read_network_pickle(path)
    g = data["G"]
    assert g.state["_modules"]["tran"].torch_class == "torch.nn.modules.container.ModuleList"
    conv = g.state["_modules"]["conv"]
    assert conv.class_name == "StyleConv" and not hasattr(conv, "module_src")
    assert conv.state["weight_gain_np"] == 0.125 and conv.state["_init_kwargs"]["resolution"] == 7
    assert data["training_set_kwargs"]["resolution"] == 256 and data["augment_pipe"] is None


_NO_TORCH_SCRIPT = r"""
import sys, json
class _BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test process")
        return None
sys.meta_path.insert(0, _BlockTorch())
import numpy as np
from mat_jax.convert.pickle_safe import load_official_pickle_nets
from mat_jax.convert.formats import read_checkpoint
from mat_jax.convert.errors import MissingTorchError
nets = load_official_pickle_nets(sys.argv[1])
ref = np.load(sys.argv[2])
n = 0
for net, state in nets.items():
    for k, v in state.items():
        v = v.view(np.uint16) if v.dtype.name == "bfloat16" else v
        assert np.array_equal(v, ref[net + "/" + k]) and v.dtype == ref[net + "/" + k].dtype, k
        n += 1
try:
    read_checkpoint(sys.argv[3])
except MissingTorchError as e:
    msg = str(e)
print(json.dumps({"checked": n, "torch_loaded": "torch" in sys.modules, "pt_error": msg}))
"""


def test_import_without_torch(tmp_path, small_nets):
    path = tmp_path / "net.pkl"
    write_official_pickle(path, small_nets, protocol=4)
    ref = {f"{n}/{k}": v for n, m in small_nets.items() for k, v in _np_state(m).items()}
    np.savez(tmp_path / "ref.npz", **ref)
    (tmp_path / "w.pt").write_bytes(b"anything")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _NO_TORCH_SCRIPT,
            str(path),
            str(tmp_path / "ref.npz"),
            str(tmp_path / "w.pt"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert (
        result == {"checked": len(ref), "torch_loaded": False, "pt_error": result["pt_error"]}
        and "pip install 'mat-jax[torch]'" in result["pt_error"]
    )


# ----------------------------------------------------------------------------------------------------------
# Malicious and broken files


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _evil_payloads(target: str):
    code = f"open({target!r}, 'w').write('pwned')"
    return {
        "system": (_Evil(os.system, f"touch {target}"), "system"),
        "exec": (_Evil(builtins.exec, code), "builtins.exec"),
        "eval": (_Evil(builtins.eval, code), "builtins.eval"),
        "open": (_Evil(builtins.open, target, "w"), "open"),
        "popen": (_Evil(subprocess.Popen, ["touch", target]), "subprocess.Popen"),
        "getattr": (_Evil(builtins.getattr, "text", "upper"), "builtins.getattr"),
        "importlib": (_Evil(__import__("importlib").import_module, "antigravity"), "importlib.import_module"),
    }


@pytest.mark.parametrize("kind", ["system", "exec", "eval", "open", "popen", "getattr", "importlib"])
@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_globals_refused_before_call(tmp_path, kind, protocol):
    target = tmp_path / "pwned"
    payload, named = _evil_payloads(str(target))[kind]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}, protocol=protocol))
    with pytest.raises(UnsafePickleError, match=named.replace(".", r"\.")) as err:
        load_official_pickle(path)
    assert str(path) in str(err.value)
    assert not target.exists(), "the payload ran"


def test_malicious_global_nested_in_a_network(tmp_path, small_nets):
    """A bad global deep inside a module's state is refused too (and nothing before it ran)."""
    target = tmp_path / "pwned"
    net = _small_net(4)
    net.conv.evil = _Evil(os.system, f"touch {target}")
    path = tmp_path / "nested.pkl"
    write_official_pickle(path, {"G": net, "G_ema": small_nets["G_ema"]})
    with pytest.raises(UnsafePickleError, match="system"):
        load_official_pickle(path)
    assert not target.exists()


def test_unknown_torch_class_refused(tmp_path):
    path = tmp_path / "conv.pkl"
    path.write_bytes(pickle.dumps({"G_ema": nn.Conv2d(1, 1, 1)}, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"torch\.nn\.modules\.conv\.Conv2d"):
        load_official_pickle(path)


def test_malicious_global_inside_storage_blob(tmp_path):
    """The legacy storage blob is a pickle of its own; its globals are restricted as well."""
    target = tmp_path / "pwned"
    inner = pickle.dumps(_Evil(os.system, f"touch {target}"), protocol=2)

    class _Blob:
        def __reduce__(self):
            return torch.storage._load_from_bytes, (inner,)

    path = tmp_path / "blob.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Blob()}, protocol=4))
    with pytest.raises(UnsafePickleError, match="system"):
        load_official_pickle(path)
    assert not target.exists()


def test_truncated_pickle(tmp_path, small_nets):
    path = tmp_path / "net.pkl"
    write_official_pickle(path, small_nets)
    blob = path.read_bytes()
    for cut in (len(blob) // 3, len(blob) - 5):
        bad = tmp_path / f"cut{cut}.pkl"
        bad.write_bytes(blob[:cut])
        with pytest.raises(ConversionError, match=rf"{bad}.*(truncated|not a valid pickle)"):
            load_official_pickle(bad)


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.pkl"
    text.write_text("hello, I am not a pickle")
    with pytest.raises(ConversionError, match=str(text)):
        load_official_pickle(text)
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ConversionError, match=r"not an official MAT network pickle.*weights"):
        load_official_pickle(other)


def test_missing_net(tmp_path, small_nets):
    path = tmp_path / "g_only.pkl"
    write_official_pickle(path, {"G": small_nets["G"]})
    with pytest.raises(ConversionError, match=r"no network 'G_ema'"):
        load_official_pickle(path)


def test_tensor_reading_past_storage_is_an_error(tmp_path):
    storage = torch.arange(4, dtype=torch.float32).untyped_storage()

    class _Overlong:  # a tensor record claiming 10 elements of a 4-element storage
        def __reduce__(self):
            typed = torch.storage.TypedStorage(wrap_storage=storage, dtype=torch.float32, _internal=True)
            return torch._utils._rebuild_tensor_v2, (typed, 0, (10,), (1,), False, collections.OrderedDict())

    path = tmp_path / "short.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Overlong()}, protocol=4))
    with pytest.raises(ConversionError, match=rf"{path}.*reads past its storage"):
        read_network_pickle(path)


# ----------------------------------------------------------------------------------------------------------
# A full-size pickle in the official layout: twin G and D with the golden synthetic weights


def _make_params(golden_dir):
    import importlib.util

    spec = importlib.util.spec_from_file_location("golden_make_params", golden_dir / "make_params.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_params


@pytest.mark.slow
def test_full_size_official_pickle_256(tmp_path, golden_dir):
    from mat_jax.convert.formats import read_checkpoint
    from mat_jax.torch_twin import Discriminator, Generator

    make_params = _make_params(golden_dir)
    want = {net: make_params(golden_dir / f"keys_{net}_256.json") for net in ("G", "D")}
    with torch.device("meta"):
        g, d = Generator(img_resolution=256), Discriminator(img_resolution=256)
    g.load_state_dict({k: torch.from_numpy(v) for k, v in want["G"].items()}, strict=True, assign=True)
    d.load_state_dict({k: torch.from_numpy(v) for k, v in want["D"].items()}, strict=True, assign=True)
    for m in (g, d):  # non-persistent buffers are not in the state dict; give them real storage
        for sub in m.modules():
            if hasattr(sub, "weight_maskUpdater"):
                sub.weight_maskUpdater = torch.ones(sub.weight_maskUpdater.shape)
    path = tmp_path / "MAT_256.pkl"
    write_official_pickle(path, {"G": g, "D": d, "G_ema": g}, protocol=3)
    ckpt = read_checkpoint(path, nets=("G_ema", "D"))
    assert ckpt.resolution == 256 and list(ckpt.nets) == ["G_ema", "D"]
    for net, name in (("G_ema", "G"), ("D", "D")):
        _assert_same(ckpt.nets[net], want[name])
