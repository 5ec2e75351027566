"""Loading `configs/*.py` files (ml_collections ConfigDicts) outside absl, e.g. for `mat-jax info`.

Training uses `ml_collections.config_flags` (`--config path --config.key=value`); this module gives
the same result from Python: `load_config("configs/places512.py", ["model.resolution=256"])`.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import ml_collections

from mat_jax.models.config import MATConfig


def load_config(path: str | pathlib.Path, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """Execute a config file's `get_config()` and apply `key.sub=value` overrides (Python literals)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"mat_jax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"{path} has no get_config() function")
    config = module.get_config()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw  # a bare string
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise KeyError(f"{path}: no config field {key!r}")
        node[leaf] = value
    return config


def model_config(config: ml_collections.ConfigDict) -> MATConfig:
    """The static architecture (frozen dataclass) from a config's `model` section."""
    return MATConfig.from_dict(config.model.to_dict())
