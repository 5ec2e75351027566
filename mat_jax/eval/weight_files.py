"""Weight files read without running anything from them: plain numpy pickles and torch state dicts (numpy only).

- `read_numpy_pickle`: a pickle of nested dicts/lists of numpy arrays, through an unpickler that knows only numpy's
  array reconstruction (`_reconstruct`, `ndarray`, `dtype`) as data stand-ins; object arrays are refused.
- `read_torch_state_dict`: a torch state dict in either layout, without torch: the zip archive of torch >= 1.6 and
  the legacy stream (magic, protocol, sys_info, pickle, raw storages) of older files. Globals are resolved through
  an allow-list of stand-ins (the tensor rebuild and storage types of `mat_jax.convert.pickle_safe`).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
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
    load_restricted,
)

__all__ = ["is_torch_file", "read_numpy_pickle", "read_torch_state_dict"]


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
            raise ConversionError(
                f"numpy array record of shape {shape} {dt} has {len(raw)} bytes, needs "
                f"{count * dt.itemsize} (truncated or corrupt file)"
            )
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
            raise UnsafePickleError(
                f"{self.source}: refusing to load global '{module}.{name}': a numpy weight "
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


def read_numpy_pickle(data: bytes, source: str = "<bytes>") -> Any:
    """The object of a plain numpy pickle (dicts / lists of arrays), arrays rebuilt from their bytes."""
    obj = load_restricted(_NumpyUnpickler(io.BytesIO(data), source), source, "a numpy weight pickle")
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
            raise UnsafePickleError(
                f"{self.source}: refusing to load global '{module}.{name}': it is not part "
                "of a torch state dict of tensors (nothing from the file was executed)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if not (
            isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage" and isinstance(pid[1], _StorageType)
        ):
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
            data = data[off : off + n]
        try:
            out[str(k)] = _rebuild_tensor(data, *v.args)
        except ConversionError as e:
            raise ConversionError(f"{source}: entry {k}: {e}") from None
    return out


def _read_zip_state_dict(archive: zipfile.ZipFile, source: str) -> collections.OrderedDict:
    names = archive.namelist()
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise ConversionError(f"{source}: expected one <folder>/data.pkl in the torch archive, found {pkls or 'none'}")
    prefix = pkls[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() != b"little":
        raise ConversionError(f"{source}: tensors were written big-endian (not supported)")
    up = _TorchUnpickler(io.BytesIO(archive.read(pkls[0])), source)
    obj = load_restricted(up, source, "a torch state dict")
    storages = {}
    for key, slot in up.slots.items():
        member = f"{prefix}data/{key}"
        try:
            raw = archive.read(member)
        except KeyError:
            raise ConversionError(f"{source}: storage {member} is missing from the archive") from None
        dtype = _storage_dtype(slot.tag)
        if len(raw) < slot.numel * dtype.itemsize:
            raise ConversionError(
                f"{source}: storage {member} has {len(raw)} bytes, {slot.numel} elements of "
                f"{dtype} need {slot.numel * dtype.itemsize} (truncated file)"
            )
        storages[key] = np.frombuffer(raw, dtype, count=slot.numel)
    return _finish_state_dict(obj, storages, source)


def _read_legacy_state_dict(f: BinaryIO, source: str) -> collections.OrderedDict:
    def plain(what: str) -> Any:
        return load_restricted(_TorchUnpickler(f, source, allow={}), source, f"a legacy torch file ({what})")

    if plain("magic number") != _LEGACY_MAGIC:
        raise ConversionError(f"{source}: not a torch file (neither a zip archive nor the legacy magic number)")
    if plain("protocol version") != _LEGACY_PROTOCOL:
        raise ConversionError(f"{source}: unknown legacy torch protocol version")
    sys_info = plain("sys_info")
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise ConversionError(f"{source}: written on a big-endian machine (not supported)")
    up = _TorchUnpickler(f, source)
    obj = load_restricted(up, source, "a torch state dict")
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
            raise ConversionError(
                f"{source}: storage {key}: {numel} elements announced, {len(raw)} bytes present (truncated file)"
            )
        storages[key] = np.frombuffer(raw, dtype)
    return _finish_state_dict(obj, storages, source)


def read_torch_state_dict(path_or_bytes: str | os.PathLike | bytes, source: str = "<bytes>") -> collections.OrderedDict:
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


def is_torch_file(data: bytes) -> bool:
    """Whether `data` is a torch file (zip archive or legacy stream), judged without unpickling its content."""
    if data[:4] == b"PK\x03\x04":
        return True
    try:  # the legacy layout opens with the pickled magic number
        return load_restricted(_TorchUnpickler(io.BytesIO(data), "", allow={}), "", "magic") == _LEGACY_MAGIC
    except ConversionError:
        return False
