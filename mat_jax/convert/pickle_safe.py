"""Restricted unpickler for the official MAT / StyleGAN2-ADA network pickles (numpy only, no torch).

Why: the official loader re-`exec`s the module source stored in the pickle and lets `pickle` call any
global the file names, so opening an untrusted `.pkl` runs arbitrary code. This reader resolves every
global through an allow-list of harmless stand-ins (records that keep the BUILD state, functions that
return numpy arrays) and refuses anything else *in `find_class`*, i.e. before the opcode that would call
it runs. The file layout is described in shared/reference/official-pickle-format.md:

    top-level dict {G, D, G_ema, augment_pipe, training_set_kwargs, ...}
    network / custom submodule -> torch_utils.persistence._reconstruct_persistent_obj(meta)
    plain torch module         -> NEWOBJ(torch.nn.modules.<...>.<Class>) + BUILD(__dict__)
    tensor                     -> torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
    storage                    -> torch.storage._load_from_bytes(<legacy torch.save blob of one storage>)

Public entry points: `load_official_pickle(path, net)` -> ordered {official_name: np.ndarray};
`read_network_pickle(path)` -> the top-level dict with records; `module_state_dict(record)`.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import struct
from typing import Any, BinaryIO

import numpy as np

from mat_jax.convert.errors import ConversionError, UnsafePickleError

__all__ = [
    "PersistentRecord",
    "ModuleRecord",
    "read_network_pickle",
    "module_state_dict",
    "load_official_pickle",
    "load_official_pickle_nets",
    "PICKLE_NETS",
]

PICKLE_NETS = ("G", "D", "G_ema")

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


# ----------------------------------------------------------------------------------------------------------
# Stand-ins


class PersistentRecord:
    """What `_reconstruct_persistent_obj(meta)` yields here: the class name and the pickled `__dict__`.

    The embedded `module_src` is dropped unread (it is only ever executed by the official loader)."""

    def __init__(self, meta: dict) -> None:
        if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
            raise ConversionError("persistent object record is not of type 'class' with a dict state")
        self.class_name = str(meta.get("class_name"))
        self.version = meta.get("version")
        self.state: dict = meta["state"]

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


class ModuleRecord:
    """A plain torch module (ModuleList, Softmax, ...) rebuilt as data: NEWOBJ + BUILD(state)."""

    torch_class = "?"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ConversionError(f"{self.torch_class}: BUILD state is {type(state).__name__}, expected a dict")
        self.state = state

    def __repr__(self) -> str:
        return f"ModuleRecord({self.torch_class})"


class _EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict (a dict subclass used in `init_kwargs`)."""


class _StorageType:
    """Stand-in for `torch.<X>Storage` classes; only ever used as a tag inside persistent ids."""

    def __init__(self, name: str, dtype: Any) -> None:
        self.name, self.dtype = name, dtype


class _DType:
    """Stand-in for `numpy.dtype(name, align, copy)` + BUILD; turned into a real dtype by `_np_scalar`."""

    def __init__(self, name: Any, align: Any = False, copy: Any = False) -> None:
        if not isinstance(name, str) or name not in _NUMPY_SCALAR_DTYPES:
            raise UnsafePickleError(f"numpy.dtype({name!r}) is not an allowed scalar dtype")
        self.name, self.order = name, "<"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.order = state[1]


_NUMPY_SCALAR_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy.core.multiarray.scalar(dtype, bytes) for plain numeric dtypes (e.g. np.float64 gains)."""
    if not isinstance(dtype, _DType) or not isinstance(data, bytes):
        raise UnsafePickleError("numpy scalar record with an unexpected dtype or payload")
    dt = np.dtype(dtype.name).newbyteorder("<" if dtype.order in ("<", "|", "=") else ">")
    if len(data) != dt.itemsize:
        raise ConversionError(f"numpy scalar payload has {len(data)} bytes, dtype {dt} needs {dt.itemsize}")
    return np.frombuffer(data, dt)[0].astype(dt.newbyteorder("="))


def _codecs_encode(text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    """_codecs.encode as protocol 2 uses it to spell `bytes` (str, 'latin1'); nothing else is accepted."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise UnsafePickleError("_codecs.encode is only allowed as protocol 2's bytes spelling (str, 'latin1')")
    return text.encode("latin1")


def _bfloat16() -> Any:
    import ml_dtypes  # a jax dependency; imported lazily: only bfloat16 storages need it

    return np.dtype(ml_dtypes.bfloat16)


_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


def _storage_dtype(tag: _StorageType) -> np.dtype:
    return _bfloat16() if tag.dtype == "bfloat16" else np.dtype(tag.dtype).newbyteorder("<")


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_ignored: Any) -> np.ndarray:
    """torch._utils._rebuild_tensor(_v2): `storage` (1-D array) viewed with element offset/size/stride."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise ConversionError("tensor record does not point at a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise ConversionError(f"tensor record with invalid size {size} / stride {stride} / offset {offset}")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * st for n, st in zip(size, stride, strict=True))
    if last >= storage.shape[0]:
        raise ConversionError(
            f"tensor size {size} stride {stride} offset {offset} reads past its storage "
            f"of {storage.shape[0]} elements (truncated or corrupt file)"
        )
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=tuple(st * item for st in stride))
    out = np.array(view, copy=True)
    return out.astype(out.dtype.newbyteorder("=")) if out.dtype.byteorder == "<" else out


def _rebuild_parameter(data: Any, requires_grad: Any = None, hooks: Any = None, state: Any = None) -> np.ndarray:
    """torch._utils._rebuild_parameter(_with_state): a parameter is its data; where it lives names it."""
    if not isinstance(data, np.ndarray):
        raise ConversionError("parameter record does not wrap a tensor")
    return data


# ----------------------------------------------------------------------------------------------------------
# Legacy single-storage torch.save blob (inside torch.storage._load_from_bytes)


class _StorageRef:
    def __init__(self, tag: _StorageType, key: str, numel: int, view: Any) -> None:
        self.tag, self.key, self.numel, self.view = tag, key, numel, view


class _LegacyUnpickler(pickle.Unpickler):
    """Reads the object part of a legacy blob: only storage-type globals, only 'storage' persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise UnsafePickleError(f"refusing global {module}.{name} inside a tensor storage record")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise ConversionError(f"unexpected persistent id {pid!r:.80} in a tensor storage record")
        view = pid[5] if len(pid) > 5 else None
        return _StorageRef(pid[1], str(pid[2]), int(pid[4]), view)


def _plain_load(f: BinaryIO, what: str) -> Any:
    up = _LegacyUnpickler(f)
    try:
        return up.load()
    except (EOFError, pickle.UnpicklingError, struct.error) as e:
        if isinstance(e, UnsafePickleError):
            raise
        raise ConversionError(f"tensor storage record: cannot read the {what} ({e})") from e


def _load_from_bytes(blob: Any) -> np.ndarray:
    """torch.storage._load_from_bytes(blob) -> the storage as a 1-D little-endian numpy array."""
    if not isinstance(blob, (bytes, bytearray)):
        raise ConversionError("storage record payload is not bytes")
    f = io.BytesIO(blob)
    if _plain_load(f, "magic number") != _LEGACY_MAGIC:
        raise ConversionError("storage record does not start with the torch legacy magic number")
    if _plain_load(f, "protocol version") != _LEGACY_PROTOCOL:
        raise ConversionError("storage record has an unknown torch legacy protocol version")
    sys_info = _plain_load(f, "sys_info")
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise ConversionError("storage record was written on a big-endian machine (not supported)")
    ref = _plain_load(f, "storage reference")
    keys = _plain_load(f, "storage key list")
    if not isinstance(ref, _StorageRef) or not isinstance(keys, list):
        raise ConversionError("storage record does not hold exactly one storage")
    dtype = _storage_dtype(ref.tag)
    arrays = {}
    for key in keys:
        head = f.read(8)
        if len(head) != 8:
            raise ConversionError(f"storage {key}: truncated element count")
        numel = struct.unpack("<q", head)[0]
        raw = f.read(numel * dtype.itemsize)
        if numel < 0 or len(raw) != numel * dtype.itemsize:
            raise ConversionError(f"storage {key}: {numel} elements announced, {len(raw)} bytes present (truncated)")
        arrays[str(key)] = np.frombuffer(raw, dtype)
    if ref.key not in arrays:
        raise ConversionError(f"storage record references key {ref.key!r} that it does not contain")
    data = arrays[ref.key]
    if ref.view is not None:  # old torch: (view_key, offset, size) into the root storage
        _, off, n = ref.view
        data = data[int(off) : int(off) + int(n)]
    return data


# ----------------------------------------------------------------------------------------------------------
# The allow-list


def _refuse_persistent(pid: Any) -> Any:
    raise ConversionError(f"unexpected persistent id {pid!r:.80} in a network pickle")


_TORCH_MODULE_CLASSES = {
    "torch.nn.modules.container": ("ModuleList", "Sequential", "ModuleDict"),
    "torch.nn.modules.activation": ("Softmax", "GELU", "LeakyReLU", "ReLU", "Sigmoid", "Tanh"),
    "torch.nn.modules.pooling": ("AdaptiveAvgPool2d", "AvgPool2d"),
    "torch.nn.modules.normalization": ("LayerNorm",),
    "torch.nn.modules.dropout": ("Dropout",),
    "torch.nn.modules.linear": ("Identity",),
}


def _module_record_class(module: str, name: str) -> type:
    return type(name, (ModuleRecord,), {"torch_class": f"{module}.{name}", "__module__": __name__})


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("_codecs", "encode"): _codecs_encode,  # protocol 2 spells bytes as _codecs.encode(str, 'latin1')
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): _DType,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
}
for _mod, _names in _TORCH_MODULE_CLASSES.items():
    for _name in _names:
        _ALLOWED[(_mod, _name)] = _module_record_class(_mod, _name)
for _name, _dt in _STORAGE_DTYPES.items():
    _ALLOWED[("torch", _name)] = _StorageType(_name, _dt)


def _py3_name(module: str, name: str) -> tuple[str, str]:
    """Protocol < 3 writers spell some globals with Python 2 names (`__builtin__.set`, `commands.Popen`
    for subprocess.Popen); map them back as the stdlib unpickler does, for the allow-list and messages."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _RestrictedUnpickler(pickle.Unpickler):
    """`find_class` is the only way a pickle can reach a callable; it returns stand-ins or refuses."""

    def __init__(self, f: BinaryIO, source: str) -> None:
        super().__init__(f)
        self.source = source
        self.persistent_load = _refuse_persistent

    def find_class(self, module: str, name: str) -> Any:
        module, name = _py3_name(module, name)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refusing to load global '{module}.{name}': it is not part of the official "
                "network pickle layout (nothing from the file was executed). Only open pickles you trust "
                "with other tools."
            ) from None


# ----------------------------------------------------------------------------------------------------------
# Reading and extraction


def load_restricted(unpickler: pickle.Unpickler, source: str, what: str) -> Any:
    """`unpickler.load()` with every failure as one CheckpointError naming `source`: refusals stay
    UnsafePickleError, a damaged stream says whether it is truncated or not a pickle at all."""
    try:
        return unpickler.load()
    except (UnsafePickleError, ConversionError) as e:
        msg = e.args[0] if e.args else ""
        raise type(e)(msg if msg.startswith(source) else f"{source}: {msg}") from None
    except (
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        struct.error,
    ) as e:
        hint = "the file is truncated" if isinstance(e, EOFError) else "it is not a valid pickle"
        raise ConversionError(f"{source}: cannot read as {what}: {hint} ({type(e).__name__}: {e})") from None


def read_network_pickle(path: str | os.PathLike) -> dict:
    """Unpickle `path` with the restricted unpickler; returns the top-level dict (networks as records)."""
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ConversionError(f"{path}: cannot open ({e.strerror})") from e
    with f:
        obj = load_restricted(_RestrictedUnpickler(f, path), path, "an official MAT network pickle")
    if not isinstance(obj, dict) or not any(n in obj for n in PICKLE_NETS):
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ConversionError(
            f"{path}: not an official MAT network pickle (expected a dict with G / D / G_ema, found {found})"
        )
    return obj


def module_state_dict(record: Any, prefix: str = "", where: str = "") -> collections.OrderedDict:
    """Official state_dict of a record tree: own `_parameters`, own persistent `_buffers`, then children."""
    if not isinstance(record, (PersistentRecord, ModuleRecord)) or not hasattr(record, "state"):
        raise ConversionError(f"{where}: module {prefix.rstrip('.') or '<root>'} is not a module record")
    state = record.state
    out: collections.OrderedDict = collections.OrderedDict()
    non_persistent = set(state.get("_non_persistent_buffers_set") or ())
    for kind in ("_parameters", "_buffers"):
        for name, value in (state.get(kind) or {}).items():
            if value is None or (kind == "_buffers" and name in non_persistent):
                continue
            if not isinstance(value, np.ndarray):
                raise ConversionError(f"{where}: {prefix}{name} is not a tensor ({type(value).__name__})")
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{name}.", where))
    return out


def load_official_pickle_nets(path: str | os.PathLike, nets: tuple[str, ...] | None = None) -> dict[str, dict]:
    """{net: ordered {official_name: np.ndarray}} for each requested net (None: every net present)."""
    data = read_network_pickle(path)
    if nets is None:
        nets = tuple(n for n in PICKLE_NETS if data.get(n) is not None)
    out = {}
    for net in nets:
        if net not in PICKLE_NETS:
            raise ConversionError(f"unknown net {net!r}; an official pickle holds {', '.join(PICKLE_NETS)}")
        if net not in data or data[net] is None:
            raise ConversionError(f"{os.fspath(path)}: has no network {net!r} (found {sorted(map(str, data))})")
        out[net] = module_state_dict(data[net], "", f"{os.fspath(path)} [{net}]")
    return out


def load_official_pickle(path: str | os.PathLike, net: str = "G_ema") -> collections.OrderedDict:
    """Ordered {official_name: np.ndarray} of one net ('G_ema' by default, the inference weights)."""
    return load_official_pickle_nets(path, (net,))[net]
