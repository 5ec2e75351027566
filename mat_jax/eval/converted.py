"""Metric-network weights converted once into a plain `.npz` or `.safetensors` file (`mat-jax eval-weights`).

Reading NVIDIA's TorchScript Inception or the LPIPS torch files means walking a zip of pickles on every run; the
converted file is a flat {"a/b/c": float32 array} map of the Flax parameters, readable with numpy or safetensors
alone. Its metadata names the network (`mat_jax_metric_net`: "inception" | "lpips") and the source file. On read
every key and shape is checked against the Flax module (by `jax.eval_shape`, nothing is computed): a missing or
unexpected key, a wrong shape, a non-float or non-finite value, or a file of the other network fails naming the file
and the key. The .npz / .safetensors readers and writers are those of `mat_jax.convert.formats`.
"""

from __future__ import annotations

import os

import numpy as np

from mat_jax.convert.errors import ConversionError

__all__ = ["SUFFIXES", "NETS", "is_converted", "reference_shapes", "save", "load"]

SUFFIXES = (".npz", ".safetensors")
NETS = ("inception", "lpips")
KIND_KEY = "mat_jax_metric_net"


def is_converted(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(SUFFIXES)


def _check_net(net: str) -> None:
    if net not in NETS:
        raise ValueError(f"unknown metric network {net!r}; known: {', '.join(NETS)}")


def reference_shapes(net: str) -> dict[str, tuple[int, ...]]:
    """{"params/a/b": shape} of the Flax module's parameters (shapes only; nothing runs)."""
    import jax
    import jax.numpy as jnp

    _check_net(net)
    if net == "inception":
        from mat_jax.eval.inception import InceptionV3FID

        shapes = jax.eval_shape(InceptionV3FID().init, jax.random.PRNGKey(0), jnp.zeros((1, 299, 299, 3)))
    else:
        from mat_jax.eval.lpips import LPIPSAlex

        x = jnp.zeros((1, 64, 64, 3))
        shapes = jax.eval_shape(LPIPSAlex().init, jax.random.PRNGKey(0), x, x)
    return {k: tuple(v.shape) for k, v in _flatten(shapes).items()}


def _flatten(tree, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        out.update(_flatten(v, key) if hasattr(v, "items") else {key: v})
    return out


def _unflatten(flat: dict) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def save(net: str, params: dict, dst: str | os.PathLike, source: str) -> int:
    """Write `params` ({'params': ...}) to dst (.npz / .safetensors, atomically); returns the tensor count."""
    from mat_jax.convert.formats import handler_for

    _check_net(net)
    dst = os.fspath(dst)
    if not is_converted(dst):
        raise ConversionError(f"{dst}: the converted weights are written as {' or '.join(SUFFIXES)}")
    flat = {k: np.asarray(v, np.float32) for k, v in _flatten(params).items()}
    _validate(net, flat, dst)
    handler_for(dst).write(dst, flat, {KIND_KEY: net, "source": os.path.basename(source)})
    return len(flat)


def load(net: str, path: str | os.PathLike) -> dict:
    """{'params': ...} (float32 numpy) of `net` from a file `save` wrote; errors name the file and the key."""
    from mat_jax.convert.formats import handler_for

    _check_net(net)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    flat, meta = handler_for(path).read(path)
    kind = meta.get(KIND_KEY)
    if kind != net:
        what = f"holds {kind} weights" if kind else f"has no {KIND_KEY} entry (not written by `mat-jax eval-weights`)"
        raise ConversionError(f"{path}: {what}, expected {net}; convert with `mat-jax eval-weights {net} SRC {path}`")
    _validate(net, flat, path)
    return _unflatten({k: np.asarray(v, np.float32) for k, v in flat.items()})


def _validate(net: str, flat: dict, where: str) -> None:
    expected = reference_shapes(net)
    missing, unexpected = sorted(set(expected) - set(flat)), sorted(set(flat) - set(expected))
    if missing or unexpected:
        parts = [f"{len(missing)} missing keys (first: {missing[0]})" if missing else ""]
        parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})" if unexpected else "")
        raise ConversionError(f"{where}: not the {net} network: {', '.join(p for p in parts if p)}")
    for key, shape in expected.items():
        value = np.asarray(flat[key])
        if value.dtype.kind != "f":
            raise ConversionError(f"{where}: {key} has dtype {value.dtype}, expected floating point")
        if value.shape != shape:
            raise ConversionError(f"{where}: {key} has shape {value.shape}, expected {shape}")
        if not np.isfinite(value).all():
            raise ConversionError(f"{where}: {key} holds non-finite values")
