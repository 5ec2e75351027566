"""Read and write official-naming MAT checkpoints in several file formats.

Conventions (stated once, used by every format):

* Names are the official PyTorch `state_dict()` names (`synthesis.…`, `mapping.…` for G; `Dis.…`,
  `fc0.…` for D), values are numpy arrays (bfloat16 via `ml_dtypes`).
* **One net per file by default, un-prefixed**, exactly an official `state_dict()`: a generator file
  loads into the official (or twin) `Generator` with `load_state_dict(strict=True)`.
* **Several nets in one file**: every key is prefixed with its net, `G.`, `D.` or `G_ema.`
  (e.g. `G_ema.synthesis.dec.Dec_16x16.conv0.weight`). `.pt` files holding a nested dict
  `{net: state_dict}` are read too.
* Which net (G or D) and which resolution a state dict holds is inferred from its keys and shapes
  (`nets.infer_layout`) and then checked entry by entry against `weights.layout.official_table`.
* `dtype` on export casts every floating-point entry except `*.resample_filter`, which the official
  upfirdn2d asserts is float32 (its values are exact in any float type anyway).

Formats are handlers in a registry keyed by name (`register_format`); a path picks its handler by
suffix, a directory by the handler registered with `directory=True`: the mat-jax orbax checkpoint directory
(`convert.orbax_dir`, registered at the end of this module; jax and orbax are imported only when it reads or
writes). torch is imported only by the `.pt` handler.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import struct
from typing import Callable, Mapping

import numpy as np

from mat_jax.convert import orbax_dir
from mat_jax.convert.atomic import atomic_output
from mat_jax.convert.errors import ConversionError, MissingTorchError
from mat_jax.convert.nets import NET_KIND, infer_layout, join_nets, split_nets, validate_state_dict
from mat_jax.convert.pickle_safe import load_official_pickle_nets

__all__ = [
    "Checkpoint",
    "FormatHandler",
    "register_format",
    "format_names",
    "handler_for",
    "read_checkpoint",
    "write_checkpoint",
    "cast_state",
    "DTYPES",
    "model_config_sidecar",
    "read_model_config_sidecar",
]

DTYPES = ("float32", "float16", "bfloat16")
MODEL_CONFIG_SUFFIX = ".model_config.json"


@dataclasses.dataclass(frozen=True)
class FormatHandler:
    """`read(path) -> (flat {name: array}, metadata)`; `write(path, flat, metadata)` (None = read only)."""

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[str], tuple[dict, dict]]
    write: Callable[[str, dict, dict], None] | None = None
    directory: bool = False
    description: str = ""


_REGISTRY: dict[str, FormatHandler] = {}


def register_format(handler: FormatHandler, replace: bool = False) -> None:
    """Add a format (e.g. the orbax directory format from the JAX side)."""
    if handler.name in _REGISTRY and not replace:
        raise ValueError(f"format {handler.name!r} is already registered")
    _REGISTRY[handler.name] = handler


def format_names() -> list[str]:
    return list(_REGISTRY)


def handler_for(path: str | os.PathLike, fmt: str | None = None) -> FormatHandler:
    """The handler named `fmt`, else the one whose suffix matches `path`, else the directory handler."""
    path = os.fspath(path)
    if fmt is not None:
        if fmt not in _REGISTRY:
            raise ConversionError(f"unknown format {fmt!r}; known formats: {', '.join(_REGISTRY)}")
        return _REGISTRY[fmt]
    lower = path.lower()
    for h in _REGISTRY.values():
        if any(lower.endswith(s) for s in h.suffixes):
            return h
    if os.path.isdir(path) or path.endswith(os.sep) or not os.path.splitext(path)[1]:
        for h in _REGISTRY.values():
            if h.directory:
                return h
        raise ConversionError(
            f"{path}: is a directory or has no file extension, and no directory format is registered yet "
            "(the mat-jax orbax checkpoint format is registered by mat_jax.convert.formats)"
        )
    suffixes = sorted(s for h in _REGISTRY.values() for s in h.suffixes)
    raise ConversionError(f"{path}: unknown checkpoint extension; use one of {', '.join(suffixes)} or pass a format")


# ----------------------------------------------------------------------------------------------------------
# Checkpoints: read, validate, write


@dataclasses.dataclass
class Checkpoint:
    """Validated nets of one file. `nets` maps 'G' / 'G_ema' / 'D' to an ordered official state dict."""

    nets: dict[str, collections.OrderedDict]
    resolution: int
    source: str
    metadata: dict = dataclasses.field(default_factory=dict)


def read_checkpoint(
    path: str | os.PathLike,
    nets: tuple[str, ...] | None = None,
    resolution: int | None = None,
    fmt: str | None = None,
) -> Checkpoint:
    """Read, infer and validate. `nets=None` returns every net in the file; `('G_ema',)` is satisfied
    by a single un-prefixed generator too (such a file cannot tell G from G_ema)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such file or directory")
    handler = handler_for(path, fmt)
    flat, metadata = handler.read(path)
    if not flat:
        raise ConversionError(f"{path}: holds no arrays at all; not a MAT checkpoint")
    found = split_nets(flat, path)
    order = [n for n in str(metadata.get("nets", "")).split(",") if n in found]
    if len(found) > 1 and order:  # safetensors stores tensors sorted, not in write order
        found = {n: found[n] for n in order + [n for n in found if n not in order]}
    selected: dict[str, tuple[str, dict]] = {}  # wanted name -> (name in file, state)
    if nets is None:
        for name, state in found.items():
            selected[name or infer_layout(state, path)[0]] = (name, state)
    else:
        for want in nets:
            if want in found:
                selected[want] = (want, found[want])
            elif "" in found and want in ("G", "G_ema") and infer_layout(found[""], path)[0] == "G":
                selected[want] = ("", found[""])
            elif "" in found and want == "D" and infer_layout(found[""], path)[0] == "D":
                selected[want] = ("", found[""])
            else:
                have = ", ".join(n or infer_layout(s, path)[0] for n, s in found.items())
                raise ConversionError(f"{path}: has no net {want!r} (it holds: {have})")
    out: dict[str, collections.OrderedDict] = {}
    res_seen: dict[int, str] = {}
    for want, (name, state) in selected.items():
        where = f"{path} [{name}]" if name else path
        kind, res = infer_layout(state, where)
        if NET_KIND.get(want) != kind:
            raise ConversionError(f"{where}: keys describe a {kind}, but the file labels them {want!r}")
        if resolution is not None and res != resolution:
            raise ConversionError(
                f"{where}: holds a resolution-{res} {kind} (from {_evidence_key(state, kind, res)}), "
                f"but resolution {resolution} was requested"
            )
        out[want] = validate_state_dict(state, kind, res, where)
        res_seen.setdefault(res, want)
    if len(res_seen) > 1:
        raise ConversionError(f"{path}: nets of different resolutions in one file: {res_seen}")
    return Checkpoint(nets=out, resolution=next(iter(res_seen)), source=path, metadata=dict(metadata))


def _evidence_key(state: Mapping, kind: str, res: int) -> str:
    if kind == "G":
        return f"synthesis.dec.Dec_{res}x{res}.*"
    return f"Dis.{int(np.log2(res))}.weight, Dis.0.conv.weight {tuple(state['Dis.0.conv.weight'].shape)}"


def cast_state(state: Mapping[str, np.ndarray], dtype: str | None) -> collections.OrderedDict:
    """Cast floating entries to `dtype` (float32/float16/bfloat16), keeping `*.resample_filter` float32."""
    if dtype is None:
        return collections.OrderedDict(state)
    if dtype not in DTYPES:
        raise ConversionError(f"unsupported dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    target = _bfloat16() if dtype == "bfloat16" else np.dtype(dtype)
    out = collections.OrderedDict()
    for k, v in state.items():
        floating = v.dtype.kind == "f" or v.dtype.name == "bfloat16"
        out[k] = v.astype(target) if floating and not k.endswith(".resample_filter") else v
    return out


def model_config_sidecar(path: str | os.PathLike) -> str:
    """Where the architecture of a non-official-architecture weight file is stored: `<file>.model_config.json`."""
    return os.fspath(path) + MODEL_CONFIG_SUFFIX


def read_model_config_sidecar(path: str | os.PathLike) -> dict | None:
    """The `{MATConfig field: value}` stored beside a weight file, or None when there is none."""
    side = model_config_sidecar(path)
    if not os.path.isfile(side):
        return None
    try:
        with open(side) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ConversionError(f"{side}: cannot read the model config ({e})") from None
    if not isinstance(cfg, dict):
        raise ConversionError(f"{side}: holds a {type(cfg).__name__}, not a model config object")
    return cfg


def write_checkpoint(
    path: str | os.PathLike,
    nets: Mapping[str, Mapping[str, np.ndarray]],
    fmt: str | None = None,
    dtype: str | None = None,
    model_config: Mapping | None = None,
) -> None:
    """Validate each net, cast, and write atomically (one net un-prefixed, several with `<net>.`).

    Official architectures are validated against `weights.layout.official_table`.
    With `model_config` (the `MATConfig` fields of a
    non-official architecture: other widths, depths, resolutions, conditioning) the caller built the states from
    that config's layout table; they are written as given, and the config goes into `<path>.model_config.json`
    (and the file's metadata where the format has any) so that readers rebuild the same network."""
    path = os.fspath(path)
    handler = handler_for(path, fmt)
    if handler.write is None:
        raise ConversionError(f"{path}: the {handler.name} format is import-only")
    if not nets:
        raise ConversionError(f"{path}: nothing to write (no nets given)")
    checked: dict[str, collections.OrderedDict] = {}
    resolutions = set()
    for name, state in nets.items():
        if model_config is None:
            kind, res = infer_layout(state, f"net {name}")
            state = validate_state_dict(state, kind, res, f"net {name}")
        else:
            res = int(model_config["resolution"])
        checked[name] = cast_state(state, dtype)
        resolutions.add(res)
    if len(resolutions) > 1:
        raise ConversionError(f"{path}: refusing to store nets of different resolutions {sorted(resolutions)}")
    metadata = {
        "format": "mat-jax official-names v1",
        "nets": ",".join(checked),
        "resolution": str(resolutions.pop()),
        "dtype": dtype or "unchanged",
    }
    if model_config is not None:
        if handler.name == "onnx":
            raise ConversionError(f"{path}: ONNX export supports the official architectures only")
        metadata["model_config"] = json.dumps(dict(model_config), sort_keys=True)
    handler.write(path, join_nets(checked), metadata)
    side = model_config_sidecar(path)
    if model_config is not None:
        with atomic_output(side) as f:
            f.write((json.dumps(dict(model_config), indent=1) + "\n").encode())
    elif os.path.isfile(side):  # an official file now stands where a non-official one was
        os.unlink(side)


# ----------------------------------------------------------------------------------------------------------
# Format handlers


def _bfloat16() -> np.dtype:
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


def _read_pkl(path: str) -> tuple[dict, dict]:
    # Always prefixed (even for one net) so that `--net` selection stays explicit for pickles.
    nets = load_official_pickle_nets(path, None)
    flat = collections.OrderedDict((f"{n}.{k}", v) for n, state in nets.items() for k, v in state.items())
    return flat, {"format": "official network pickle"}


# --- safetensors (works without torch) ---

_ST_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def _read_safetensors(path: str) -> tuple[dict, dict]:
    from safetensors import SafetensorError, deserialize

    with open(path, "rb") as f:
        data = f.read()
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        items = deserialize(data)
    except (struct.error, ValueError, SafetensorError, UnicodeDecodeError) as e:
        raise ConversionError(f"{path}: not a readable safetensors file (truncated or corrupt: {e})") from None
    out = collections.OrderedDict()
    for name, info in sorted(items, key=lambda it: header[it[0]]["data_offsets"][0]):
        if info["dtype"] not in _ST_DTYPES:
            raise ConversionError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        dt = _bfloat16() if info["dtype"] == "BF16" else np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(info["data"], dt).reshape(info["shape"])
    return out, dict(header.get("__metadata__") or {})


def _write_safetensors(path: str, flat: dict, metadata: dict) -> None:
    from safetensors.numpy import save

    blob = save({k: np.require(v, requirements="C") for k, v in flat.items()}, metadata=metadata)
    with atomic_output(path) as f:
        f.write(blob)


# --- npz (numpy only; bfloat16 stored as uint16 bit patterns, listed in the metadata entry) ---

_NPZ_META = "__mat_jax_metadata__"


def _read_npz(path: str) -> tuple[dict, dict]:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z[_NPZ_META])) if _NPZ_META in z.files else {}
            bf16 = set(meta.get("bfloat16", ()))
            out = collections.OrderedDict()
            for k in z.files:
                if k != _NPZ_META:
                    out[k] = z[k].view(_bfloat16()) if k in bf16 else z[k]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ConversionError(f"{path}: not a readable .npz file (truncated or corrupt: {e})") from None
    return out, {k: v for k, v in meta.items() if k != "bfloat16"}


def _write_npz(path: str, flat: dict, metadata: dict) -> None:
    bf16 = [k for k, v in flat.items() if v.dtype.name == "bfloat16"]
    arrays = {k: (v.view(np.uint16) if k in bf16 else v) for k, v in flat.items()}
    arrays[_NPZ_META] = np.array(json.dumps({**metadata, "bfloat16": bf16}))
    with atomic_output(path) as f:
        np.savez(f, **arrays)


# --- .pt / .pth (torch, weights_only=True) ---


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingTorchError("reading or writing .pt/.pth files") from None
    return torch


def _read_pt(path: str) -> tuple[dict, dict]:
    torch = _torch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError / UnpicklingError / EOFError / zip errors
        raise ConversionError(
            f"{path}: cannot read as a weights-only torch checkpoint ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    out = collections.OrderedDict()
    for k, v in obj.items():
        if isinstance(v, Mapping):  # nested {net: state_dict}
            out.update((f"{k}.{kk}", _to_numpy(torch, vv, path, f"{k}.{kk}")) for kk, vv in v.items())
        else:
            out[k] = _to_numpy(torch, v, path, k)
    return out, {}


def _to_numpy(torch, t, path: str, key: str) -> np.ndarray:
    if not isinstance(t, torch.Tensor):
        raise ConversionError(f"{path}: entry {key} is a {type(t).__name__}, not a tensor")
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.uint16).numpy().view(_bfloat16())
    return t.numpy()


def _write_pt(path: str, flat: dict, metadata: dict) -> None:
    torch = _torch()
    state = collections.OrderedDict()
    for k, v in flat.items():
        v = np.require(v, requirements="C")
        if v.dtype.name == "bfloat16":
            state[k] = torch.from_numpy(v.view(np.uint16)).view(torch.bfloat16)
        else:
            state[k] = torch.from_numpy(v)
    with atomic_output(path) as f:
        torch.save(state, f)


def _read_onnx_refused(path: str) -> tuple[dict, dict]:
    raise ConversionError(f"{path}: ONNX graphs are export-only; convert from the .pkl/.pt/.safetensors file")


def _write_onnx(path: str, flat: dict, metadata: dict) -> None:
    if "," in metadata.get("nets", "") or not any(k.startswith("synthesis.") for k in flat):
        raise ConversionError(f"{path}: ONNX export takes exactly one generator (use --net G_ema)")
    _torch()
    from mat_jax.torch_twin.onnx_export import export_onnx_from_state

    export_onnx_from_state(flat, path, int(metadata["resolution"]))


for _h in (
    FormatHandler("pkl", (".pkl",), _read_pkl, None, description="official network pickle (import only, safe)"),
    FormatHandler("pt", (".pt", ".pth"), _read_pt, _write_pt, description="torch state_dict (weights_only)"),
    FormatHandler("safetensors", (".safetensors",), _read_safetensors, _write_safetensors, description="safetensors"),
    FormatHandler("npz", (".npz",), _read_npz, _write_npz, description="numpy .npz"),
    FormatHandler("onnx", (".onnx",), _read_onnx_refused, _write_onnx, description="ONNX graph of G (export only)"),
):
    register_format(_h)


# --- the mat-jax checkpoint directory (Flax variables + model config; any architecture) ---

register_format(
    FormatHandler(
        "orbax",
        (),
        orbax_dir.read_official,
        orbax_dir.write_official,
        directory=True,
        description="mat-jax checkpoint directory (orbax + model config)",
    )
)
