"""The one table between mat-jax Flax variables and official MAT state_dict names.

Every official state_dict entry of a network maps to exactly one `Entry`: its official name and
shape, the Flax collection and path it lives at, and the layout transform between them:

| transform | official (PyTorch)        | mat-jax (Flax)            |
|-----------|---------------------------|---------------------------|
| fc        | weight [out, in]          | weight [in, out]          |
| conv      | weight [O, I, k, k]       | weight [k, k, I, O] HWIO  |
| modconv   | weight [1, O, I, k, k]    | weight [k, k, I, O] HWIO  |
| same      | bias, noise_strength [], noise_const, w_avg | unchanged |
| constant  | resample_filter, attn_mask | not stored: recomputed, checked on import |

Names: an official name is the Flax path joined by '.', where a list index that Flax folds into
the module name (`tran_0`, `blocks_1`, `Dis_3`, `conv_2`) is a separate component officially
(`tran.0`, `blocks.1`, `Dis.3`, `conv.2`). `official_name()` is the only place that knows this.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from mat_jax.models.attention import shifted_window_mask
from mat_jax.models.config import MATConfig
from mat_jax.models.ops import resample_filter_2d
from mat_jax.models.transformer import effective_window

_LIST_COMPONENT = re.compile(r"^(tran|blocks|enc_conv|dec_conv|down_conv|conv|Dis|Dis_stg1)_(\d+)$")
BUFFER_LEAVES = ("noise_const", "w_avg")


class CheckpointLayoutError(ValueError):
    """Weights that do not fit the expected official layout (lists every offending key)."""


@dataclasses.dataclass(frozen=True)
class Entry:
    official: str  # e.g. 'synthesis.first_stage.tran.0.blocks.1.attn.q.weight'
    shape: tuple[int, ...]  # official shape
    collection: str  # 'params' | 'buffers' | 'constant'
    path: tuple[str, ...]  # Flax path inside the collection ('' for constants)
    transform: str  # 'fc' | 'conv' | 'modconv' | 'same' | 'constant'


def official_name(path: tuple[str, ...]) -> str:
    parts = []
    for p in path:
        m = _LIST_COMPONENT.match(p)
        parts.extend([m.group(1), m.group(2)] if m else [p])
    return ".".join(parts)


def _to_official(x: np.ndarray, transform: str) -> np.ndarray:
    if transform == "fc":
        return x.T
    if transform == "conv":
        return x.transpose(3, 2, 0, 1)
    if transform == "modconv":
        return x.transpose(3, 2, 0, 1)[None]
    return x


def _from_official(x: np.ndarray, transform: str) -> np.ndarray:
    if transform == "fc":
        return x.T
    if transform == "conv":
        return x.transpose(2, 3, 1, 0)
    if transform == "modconv":
        return x[0].transpose(2, 3, 1, 0)
    return x


def abstract_variables(cfg: MATConfig, net: str) -> dict:
    """Shapes of the Flax variables ({'params': ..., 'buffers': ...}) without computing anything."""
    from mat_jax.models import Discriminator, Generator

    r = cfg.resolution
    img = jnp.zeros((1, r, r, cfg.img_channels))
    mask = jnp.ones((1, r, r, 1))
    c = jnp.zeros((1, cfg.c_dim)) if cfg.c_dim else None
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    if net == "G":
        fn = lambda: Generator(cfg).init(keys, img, mask, jnp.zeros((1, cfg.z_dim)), c)
    elif net == "D":
        fn = lambda: Discriminator(cfg).init(keys, img, mask, img, c)
    else:
        raise ValueError(f"net must be 'G' or 'D', got {net!r}")
    return jax.eval_shape(fn)


def _kind_of(path: tuple[str, ...], ndim: int, parent_has_affine: bool) -> str:
    if path[-1] != "weight":
        return "same"
    if ndim == 2:
        return "fc"
    if ndim == 4:
        return "modconv" if parent_has_affine else "conv"
    raise ValueError(f"unexpected weight rank {ndim} at {'/'.join(path)}")


def build_table(cfg: MATConfig, net: str) -> list[Entry]:
    """All entries of `net` ('G' or 'D') for `cfg`, variables first in Flax order, then constants."""
    variables = abstract_variables(cfg, net)
    table: list[Entry] = []
    module_paths = set()
    for coll in ("params", "buffers"):
        flat = flatten_dict(variables.get(coll, {}))
        module_children = {}
        for path in flat:
            module_children.setdefault(path[:-2], set()).add(path[-2])
        for path, leaf in flat.items():
            module_paths.add(path[:-1])
            has_affine = "affine" in module_children.get(path[:-1], set())
            kind = "same" if coll == "buffers" else _kind_of(path, len(leaf.shape), has_affine)
            shape = tuple(_to_official(np.zeros(leaf.shape, np.uint8), kind).shape)
            table.append(Entry(official_name(path), shape, coll, path, kind))
    # Constant buffers: resample_filter on every conv-like module, attn_mask on shifted blocks.
    conv_modules = {e.path[:-1] for e in table if e.transform in ("conv", "modconv")}
    conv_modules |= {p for p in module_paths if p and p[-1] == "toRGB"}
    for mp in sorted(conv_modules):
        table.append(Entry(official_name(mp + ("resample_filter",)), (4, 4), "constant", mp + ("resample_filter",),
                           "constant"))
    if net == "G":
        prefix = ("synthesis", "first_stage")
        for t, depth in enumerate(cfg.stage1_depths):
            size = cfg.stage1_token_sizes[t]
            for j in range(depth):
                if cfg.attention == "full":
                    continue
                ws, sh = effective_window(size, cfg.stage1_window_sizes[t], cfg.shifted_windows and j % 2 == 1)
                if sh:
                    n_w = (size // ws) ** 2
                    path = prefix + (f"tran_{t}", f"blocks_{j}", "attn_mask")
                    table.append(Entry(official_name(path), (n_w, ws * ws, ws * ws), "constant", path, "constant"))
    names = [e.official for e in table]
    if len(set(names)) != len(names):
        raise AssertionError("layout table has duplicate official names")
    return table


def constant_value(entry: Entry, cfg: MATConfig) -> np.ndarray:
    if entry.path[-1] == "resample_filter":
        return resample_filter_2d()
    if entry.path[-1] == "attn_mask":
        t = int(entry.path[-3].split("_")[1])
        size = cfg.stage1_token_sizes[t]
        ws = int(round(entry.shape[1] ** 0.5))
        return shifted_window_mask(size, size, ws, ws // 2)
    raise KeyError(entry.official)


def official_to_variables(state_dict: Mapping[str, Any], cfg: MATConfig, net: str, source: str = "weights",
                          table: list[Entry] | None = None) -> dict:
    """Official-layout arrays -> {'params': ..., 'buffers': ...} (numpy float32 trees).

    Raises CheckpointLayoutError naming every missing, unexpected or mis-shaped key (and constant
    buffers whose values differ from the recomputed ones).
    """
    table = table if table is not None else build_table(cfg, net)
    by_name = {e.official: e for e in table}
    missing = [n for n in by_name if n not in state_dict]
    unexpected = [n for n in state_dict if n not in by_name]
    misshaped, wrong_const = [], []
    out: dict[str, dict] = {"params": {}, "buffers": {}}
    for name, e in by_name.items():
        if name not in state_dict:
            continue
        arr = np.asarray(state_dict[name])
        if tuple(arr.shape) != e.shape:
            misshaped.append(f"{name}: expected {list(e.shape)}, found {list(arr.shape)}")
            continue
        if e.collection == "constant":
            if not np.array_equal(arr.astype(np.float32), constant_value(e, cfg)):
                wrong_const.append(name)
            continue
        out[e.collection][e.path] = np.array(_from_official(arr.astype(np.float32), e.transform), order="C")
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): " + ", ".join(missing))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): " + ", ".join(unexpected))
    if misshaped:
        problems.append(f"{len(misshaped)} mis-shaped key(s): " + "; ".join(misshaped))
    if wrong_const:
        problems.append(f"{len(wrong_const)} constant buffer(s) with non-official values: " + ", ".join(wrong_const))
    if problems:
        raise CheckpointLayoutError(
            f"{source} does not match the official {net} layout at resolution {cfg.resolution}:\n  "
            + "\n  ".join(problems)
        )
    return {k: unflatten_dict(v) for k, v in out.items() if v}


def variables_to_official(variables: Mapping[str, Any], cfg: MATConfig, net: str,
                          table: list[Entry] | None = None) -> "OrderedDict[str, np.ndarray]":
    """Flax variables -> official-layout float32 arrays (constants recomputed), in table order."""
    table = table if table is not None else build_table(cfg, net)
    flat = {coll: flatten_dict(jax.device_get(dict(variables.get(coll, {})))) for coll in ("params", "buffers")}
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for e in table:
        if e.collection == "constant":
            out[e.official] = constant_value(e, cfg)
        else:
            try:
                leaf = flat[e.collection][e.path]
            except KeyError:
                where = f"{e.collection}/{'/'.join(e.path)}"
                raise CheckpointLayoutError(f"variables lack {where} ({e.official})") from None
            out[e.official] = np.array(_to_official(np.asarray(leaf, np.float32), e.transform), order="C")
    return out
