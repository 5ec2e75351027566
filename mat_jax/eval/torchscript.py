"""Read the weights of a TorchScript archive (`torch.jit.save` zip) without running anything from it.

A TorchScript archive is a zip with one top folder: `code/` (TorchScript source, never read here), `data.pkl`
(the module tree: every module is `NEWOBJ(__torch__.<qualified class>) + BUILD(attribute dict)`, tensors are
`torch._utils._rebuild_tensor_v2(persistent storage id, offset, size, stride, ...)`), `constants.pkl` (tensor
constants of the code, bytes in `constants/<key>`) and `data/<key>` (the raw little-endian bytes of each storage).

`torch.jit.load` compiles and runs `code/`. Here `find_class` maps `__torch__.*` to a data record, the tensor
rebuild to the numpy function of `convert.pickle_safe`, a few list builders to `list`, and refuses every other
global before it could be called; storages are read from `data/<key>` with their size checked.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import types
import zipfile
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

from mat_jax.convert.errors import ConversionError, UnsafePickleError
from mat_jax.convert.pickle_safe import _STORAGE_DTYPES, _rebuild_tensor, _storage_dtype, _StorageType

__all__ = ["ScriptRecord", "read_torchscript", "read_torchscript_constants", "named_tensors", "find_submodule"]


class ScriptRecord:
    """A TorchScript module as data: its qualified class name and the attribute dict of its BUILD.

    NEWOBJ creates records with `cls.__new__` (no `__init__`), so the defaults live on the class."""

    class_name = "?"
    state: Mapping[str, Any] = types.MappingProxyType({})  # replaced (never mutated) by BUILD

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ConversionError(f"{self.class_name}: BUILD state is {type(state).__name__}, expected a dict")
        self.state = state

    def children(self) -> dict[str, ScriptRecord]:
        return {k: v for k, v in self.state.items() if isinstance(v, ScriptRecord)}

    def __repr__(self) -> str:
        return f"ScriptRecord({self.class_name})"


def _record_class(qualified: str) -> type:
    return type(qualified.rpartition(".")[2], (ScriptRecord,), {"class_name": qualified, "__module__": __name__})


def _list_builder(items: Any) -> list:
    if not isinstance(items, list):
        raise ConversionError("torch.jit._pickle list record does not hold a list")
    return list(items)


_LIST_BUILDERS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")


class _ScriptUnpickler(pickle.Unpickler):
    def __init__(self, f: BinaryIO, archive: zipfile.ZipFile, tensor_dir: str, source: str) -> None:
        super().__init__(f)
        self.archive, self.tensor_dir, self.source = archive, tensor_dir, source
        self.storages: dict[str, np.ndarray] = {}
        self.classes: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            qualified = f"{module}.{name}"
            return self.classes.setdefault(qualified, _record_class(qualified))
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in _LIST_BUILDERS:
            return _list_builder
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise UnsafePickleError(
            f"{self.source}: refusing to load global '{module}.{name}': it is not part of a "
            "TorchScript weight archive (nothing from the file was executed)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise ConversionError(f"{self.source}: unexpected persistent id {pid!r:.80}")
        _, tag, key, _location, numel = pid
        key = str(key)
        if key not in self.storages:
            dtype = _storage_dtype(tag)
            member = f"{self.tensor_dir}{key}"
            try:
                raw = self.archive.read(member)
            except KeyError:
                raise ConversionError(f"{self.source}: storage {member} is missing from the archive") from None
            if len(raw) < int(numel) * dtype.itemsize:
                raise ConversionError(
                    f"{self.source}: storage {member} has {len(raw)} bytes, {numel} elements of "
                    f"{dtype} need {int(numel) * dtype.itemsize} (truncated file)"
                )
            self.storages[key] = np.frombuffer(raw, dtype, count=int(numel))
        return self.storages[key]


def _open_zip(path_or_bytes: str | os.PathLike | bytes) -> tuple[zipfile.ZipFile, str]:
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return zipfile.ZipFile(io.BytesIO(path_or_bytes)), "<bytes>"
    source = os.fspath(path_or_bytes)
    try:
        return zipfile.ZipFile(source), source
    except OSError as e:
        raise ConversionError(f"{source}: cannot open ({e.strerror})") from e
    except zipfile.BadZipFile:
        raise ConversionError(
            f"{source}: not a TorchScript archive (not a zip file; an old-style torch.save "
            "pickle is not supported here)"
        ) from None


def _load_archive(path_or_bytes: str | os.PathLike | bytes) -> tuple[Any, Any]:
    """(constants, root module) of a TorchScript archive; each pickle's tensors live in its own folder."""
    archive, source = _open_zip(path_or_bytes)
    with archive:
        names = archive.namelist()
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise ConversionError(f"{source}: expected one <folder>/data.pkl in the archive, found {pkls or 'none'}")
        prefix = pkls[0][: -len("data.pkl")]
        if f"{prefix}constants.pkl" not in names:
            raise ConversionError(f"{source}: {prefix}constants.pkl is missing: not a TorchScript archive")
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() != b"little":
            raise ConversionError(f"{source}: tensors were written big-endian (not supported)")
        loaded = []
        for what in ("constants", "data"):
            member = f"{prefix}{what}.pkl"
            try:
                up = _ScriptUnpickler(io.BytesIO(archive.read(member)), archive, f"{prefix}{what}/", source)
                loaded.append(up.load())
            except (UnsafePickleError, ConversionError):
                raise
            except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, struct.error) as e:
                raise ConversionError(f"{source}: cannot read {member} ({type(e).__name__}: {e})") from None
    return loaded[0], loaded[1]


def read_torchscript(path_or_bytes: str | os.PathLike | bytes) -> ScriptRecord:
    """The root module record of a TorchScript archive (tensors as numpy arrays)."""
    _, root = _load_archive(path_or_bytes)
    if not isinstance(root, ScriptRecord):
        raise ConversionError(
            f"{path_or_bytes if not isinstance(path_or_bytes, bytes) else '<bytes>'}: data.pkl "
            f"holds a {type(root).__name__}, not a TorchScript module"
        )
    return root


def read_torchscript_constants(path_or_bytes: str | os.PathLike | bytes) -> tuple:
    """The tensor constants of the archive's code (constants.pkl), as numpy arrays."""
    constants, _ = _load_archive(path_or_bytes)
    return tuple(constants)


def named_tensors(record: ScriptRecord, prefix: str = "") -> collections.OrderedDict[str, np.ndarray]:
    """{dotted name: array} of every tensor attribute in the tree, in BUILD order (like a state_dict)."""
    out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for name, value in record.state.items():
        if isinstance(value, np.ndarray):
            out[prefix + name] = value
        elif isinstance(value, ScriptRecord):
            out.update(named_tensors(value, f"{prefix}{name}."))
    return out


def find_submodule(record: ScriptRecord, name: str, where: str = "<archive>") -> ScriptRecord:
    """The first module attribute called `name`, searched breadth first (e.g. the `layers` of an Inception)."""
    queue = [record]
    while queue:
        node = queue.pop(0)
        children = node.children()
        if name in children:
            return children[name]
        queue.extend(children.values())
    raise ConversionError(f"{where}: no submodule named {name!r} in the TorchScript module tree")
