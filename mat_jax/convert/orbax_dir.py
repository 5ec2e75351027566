"""The mat-jax checkpoint directory: Flax variables saved with orbax, the model config beside them.

    DIR/
      mat_jax_checkpoint.json   {"format": "mat-jax-orbax v1", "nets": ["G_ema", ...], "resolution": R}
      model_config.json         every MATConfig field (so the directory loads with no other input)
      G_ema/  G/  D/            one orbax PyTree checkpoint per net: {'params': ..., 'buffers': ...}

Unlike the official-name formats, a directory can hold any configuration (ablations included).
`mat_jax.convert.formats` registers it as its `directory` format ("orbax"), so `mat-jax convert` reads and
writes it; writes go to a temporary sibling directory that is renamed into place at the end. numpy-only at
import: jax and orbax are imported inside the functions that save or restore.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import tempfile
from typing import Any, Mapping

import numpy as np

from mat_jax.convert.errors import ConversionError
from mat_jax.convert.nets import NET_KIND, NET_PREFIXES, infer_layout, join_nets, split_nets
from mat_jax.models.config import MATConfig
from mat_jax.weights.layout import official_to_variables, variables_to_official

FORMAT = "mat-jax-orbax v1"
META_FILE = "mat_jax_checkpoint.json"
CONFIG_FILE = "model_config.json"


def is_checkpoint_dir(path: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(path, META_FILE))


def net_names(path: str | os.PathLike) -> list[str]:
    """The nets a checkpoint directory holds, as listed in its metadata file."""
    with open(os.path.join(path, META_FILE)) as f:
        return list(json.load(f).get("nets", []))


def save_variables(path: str | os.PathLike, nets: Mapping[str, Mapping[str, Any]], cfg: MATConfig) -> None:
    """Write {net name: Flax variables} and `cfg` atomically to the directory `path`."""
    import jax
    import orbax.checkpoint as ocp

    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not (os.path.isdir(path) and (is_checkpoint_dir(path) or not os.listdir(path))):
        raise ConversionError(f"{path}: exists and is not a mat-jax checkpoint directory; refusing to overwrite")
    bad = [n for n in nets if n not in NET_KIND]
    if bad or not nets:
        raise ConversionError(f"{path}: nets must be among {list(NET_KIND)}, got {list(nets)}")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        ckptr = ocp.PyTreeCheckpointer()
        for name, variables in nets.items():
            tree = jax.tree.map(np.asarray, {k: dict(v) for k, v in variables.items()})
            ckptr.save(os.path.join(tmp, name), tree)
        with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
            json.dump(cfg.to_dict(), f, indent=1)
        with open(os.path.join(tmp, META_FILE), "w") as f:
            json.dump({"format": FORMAT, "nets": list(nets), "resolution": cfg.resolution}, f, indent=1)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_variables(path: str | os.PathLike, nets: tuple[str, ...] | None = None):
    """-> (MATConfig, {net name: Flax variables as numpy trees})."""
    import jax
    import orbax.checkpoint as ocp

    path = os.path.abspath(os.fspath(path))
    if not is_checkpoint_dir(path):
        raise ConversionError(f"{path}: not a mat-jax checkpoint directory (no {META_FILE})")
    with open(os.path.join(path, META_FILE)) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ConversionError(f"{path}/{META_FILE}: unknown format {meta.get('format')!r} (expected {FORMAT!r})")
    try:
        with open(os.path.join(path, CONFIG_FILE)) as f:
            cfg = MATConfig.from_dict(json.load(f))
    except (OSError, ValueError, TypeError) as e:
        raise ConversionError(f"{path}/{CONFIG_FILE}: cannot read the model config ({e})") from None
    available = list(meta.get("nets", []))
    wanted = available if nets is None else list(nets)
    missing = [n for n in wanted if n not in available]
    if missing:
        raise ConversionError(f"{path}: has no net {missing[0]!r} (it holds: {', '.join(available)})")
    out = collections.OrderedDict()
    ckptr = ocp.PyTreeCheckpointer()
    for name in wanted:
        try:
            tree = ckptr.restore(os.path.join(path, name))
        except Exception as e:  # orbax raises FileNotFoundError / ValueError / tensorstore errors
            raise ConversionError(f"{path}/{name}: cannot restore ({type(e).__name__}: {e})") from None
        out[name] = jax.tree.map(np.asarray, tree)
    return cfg, out


def read_official(path: str) -> tuple[dict, dict]:
    cfg, nets = load_variables(path)
    official = {}
    for name, variables in nets.items():
        official[name] = variables_to_official(variables, cfg, NET_KIND[name])
    flat = collections.OrderedDict((f"{n}.{k}", v) for n, s in official.items() for k, v in s.items())
    return flat, {"format": FORMAT, "resolution": str(cfg.resolution)}


def write_official(path: str, flat: dict, metadata: dict) -> None:
    found = split_nets(flat, path)
    nets, res = {}, None
    for name, state in found.items():
        kind, res = infer_layout(state, path)
        nets[name or ("G_ema" if kind == "G" else "D")] = (kind, state)
    cfg = MATConfig(resolution=res)
    variables = {
        name: official_to_variables(state, cfg, kind, source=f"{path} [{name}]") for name, (kind, state) in nets.items()
    }
    save_variables(path, variables, cfg)


__all__ = [
    "save_variables",
    "load_variables",
    "is_checkpoint_dir",
    "net_names",
    "read_official",
    "write_official",
    "NET_PREFIXES",
    "join_nets",
]
