"""Training configs (ml_collections ConfigDicts): the official base, loading `configs/*.py`, `key=value` overrides.

Where the defaults live: in the dataclasses that use them, written once, with a comment each: `MATConfig`
(model), `DataConfig` (data), `steps.Recipe` (the loss / EMA / step values, through `steps.CONFIG_KEYS`) and
`optim.OptimizerConfig` (optimizer). `base_config()` builds the config from them, so a config file never repeats a
default; it adds the sections only the training loop reads (`init`, `mesh`, `checkpoint`, `logging`, the run
length), whose defaults live here, and the official recipe's few values that differ from a library default (the
batch of 32 and its 8 minibatch-std shards, data-loader workers). A config file is `base_config()` plus its
differences:

    from mat_jax.config import base_config

    def get_config():
        config = base_config()
        config.model.resolution = 256
        config.data.resolution = 256
        return config

Why the dataclasses and not the config file: the library is also used without any config (`MATConfig(resolution=
256)`, `DataConfig(...)`, `Recipe(model, global_batch)` in Python and tests), and those calls must get the same
defaults as a training run. Overrides (`--config.KEY=VALUE` of `mat-jax train`, `load_config(path, overrides)`)
go through one parser, `apply_overrides`: a Python literal when the value parses as one, else the raw string;
an unknown key is an error naming it.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import pathlib
from typing import Any

import ml_collections

from mat_jax.models.config import MATConfig

_PLACEHOLDER_TYPES = {"str": str, "int": int, "float": float}


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the file, key or field."""


def section(cls: type, **overrides: Any) -> ml_collections.ConfigDict:
    """A config section holding every field of dataclass `cls` at its default (then `overrides`). Fields whose
    default is None become typed placeholders, so `--config.section.field=value` can still set them."""
    out = ml_collections.ConfigDict()
    for f in dataclasses.fields(cls):
        value = overrides.pop(f.name) if f.name in overrides else f.default
        if value is None:
            kind = str(f.type).split(" |")[0]
            value = ml_collections.config_dict.placeholder(_PLACEHOLDER_TYPES[kind])
        out[f.name] = value
    if overrides:
        raise ConfigError(f"{cls.__name__} has no field(s) {sorted(overrides)}")
    return out


def _recipe_sections(config: ml_collections.ConfigDict) -> None:
    """train / loss / ema values of `steps.Recipe` (its defaults, through steps.CONFIG_KEYS)."""
    from mat_jax.train import steps

    defaults = {f.name: f.default for f in dataclasses.fields(steps.Recipe)}
    for field, key in steps.CONFIG_KEYS.items():
        sec, name = key.split(".")
        if sec == "optimizer":  # the optimizer section already holds it (OptimizerConfig)
            continue
        value = defaults[field]
        if value is None:
            value = ml_collections.config_dict.placeholder(float)
        elif value is dataclasses.MISSING:  # global_batch: no library default, the recipe's value is set below
            value = 0
        config[sec][name] = value


def base_config() -> ml_collections.ConfigDict:
    """The official MAT recipe (Places365 512, the official README command) as a training config."""
    from mat_jax.data.pipeline import DataConfig
    from mat_jax.eval.protocol import EvalConfig
    from mat_jax.train.optim import OptimizerConfig

    config = ml_collections.ConfigDict()
    config.seed = 0  # Seeds parameter init, latents, noise, SMM maps (via the train state) and the data stream.
    config.model = section(MATConfig)
    # Data-loader parallelism of a real run (DataConfig's defaults suit tests and small machines).
    config.data = section(DataConfig, num_workers=4, read_threads=4, prefetch_batches=4)
    config.optimizer = section(OptimizerConfig)
    config.train = ml_collections.ConfigDict()
    config.loss = ml_collections.ConfigDict()
    config.ema = ml_collections.ConfigDict()
    _recipe_sections(config)
    config.train.global_batch_size = 32  # Images per iteration over all devices (README --batch=32).
    config.train.mbstd_shards = 8  # README: 8 GPUs x 4 images, group min(mbstd_group_size, 4); 0 = per device.
    config.train.total_kimg = 50000  # Training length in thousands of images (Places: 50000, CelebA-HQ: 25000).
    config.train.total_steps = 0  # If > 0, overrides total_kimg: stop after this many iterations.
    config.train.max_consecutive_nonfinite = 10  # Stop with an error after this many non-finite iterations in a row.
    config.train.preemption_check_every_steps = 10  # Multi-process: agree on SIGTERM every N iterations (a collective).
    config.loss.vgg_weights = ""  # torchvision vgg19 state_dict (.pth or .safetensors); needed when pcp_ratio > 0.

    config.init = ml_collections.ConfigDict()  # Fine-tuning: weights loaded before step 0 of a *fresh* run.
    config.init.checkpoint = ""  # "" = random init. Else an official .pkl (G, D, G_ema), a .pt/.safetensors/.npz, a
    #                              mat-jax directory or another run; ignored when the workdir resumes.
    config.init.nets = ("G", "D", "G_ema")  # Nets to load; others keep the seed's init (G_ema = G if only G loads).
    config.init.step = ml_collections.config_dict.placeholder(int)  # Step of a run source (None = latest complete).

    config.mesh = ml_collections.ConfigDict()
    config.mesh.num_devices = 0  # Use the first N devices of this process (single process only; 0 = all devices).
    config.mesh.fsdp = 1  # Devices per FSDP group sharding params + Adam state (1 = pure data parallel; -1 = all).
    config.mesh.fsdp_min_size = 16384  # Arrays smaller than this (elements) stay replicated under FSDP.

    config.checkpoint = ml_collections.ConfigDict()
    config.checkpoint.every_steps = 2000  # Save every this many iterations (and at the end and on SIGTERM).
    config.checkpoint.max_to_keep = 3  # Newest checkpoints kept in <workdir>/checkpoints.
    config.checkpoint.async_save = True  # Write in the background (the device->host copy still blocks).

    config.logging = ml_collections.ConfigDict()
    config.logging.log_every_steps = 100  # Scalars to TensorBoard / metrics.jsonl every this many iterations.
    config.logging.grid_every_steps = 2000  # Sample grid (G_ema, noise const) every this many iterations.
    config.logging.grid_size = 8  # Samples (rows) in the grid.
    config.logging.tensorboard = True  # Write TensorBoard events (tensorboardX) to <workdir>/tensorboard.
    config.logging.progress_bar = True  # tqdm progress bar with ETA on process 0.
    config.eval = section(EvalConfig)  # Evaluation during training (off by default: eval.every_kimg = 0).
    return config


def parse_value(raw: str) -> Any:
    """An override's value: a Python literal when it parses as one (3, 0.5, (1, 2), 'x', None), else the string."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def apply_overrides(
    config: ml_collections.ConfigDict, overrides: list[str] | tuple[str, ...], where: str = "config"
) -> ml_collections.ConfigDict:
    """Set `section.key=value` items in place (the one override parser); ConfigError naming an unknown key or a
    value of the wrong type."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        node = config
        *parents, leaf = key.split(".")
        for i, p in enumerate(parents):
            if not isinstance(node, ml_collections.ConfigDict) or p not in node:
                raise ConfigError(f"{where}: no config field {'.'.join(parents[: i + 1])!r} (override {item!r})")
            node = node[p]
        if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
            known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            raise ConfigError(
                f"{where}: no config field {key!r} (override {item!r}); "
                f"known in {'.'.join(parents) or 'the top level'}: {', '.join(known)}"
            )
        value = parse_value(raw)
        try:
            node[leaf] = value
        except TypeError as e:
            raise ConfigError(f"{where}: {key}={raw!r}: {e}") from None
    return config


def call_file_function(path: str | pathlib.Path, function: str, what: str = "config file"):
    """Import a Python file (a config or sweep spec) and return `function()`'s result; FileNotFoundError /
    ConfigError naming the file when it is missing or lacks the function."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    spec = importlib.util.spec_from_file_location(f"mat_jax_{function}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, function):
        raise ConfigError(f"{path} has no {function}() function")
    return getattr(module, function)()


def load_config(path: str | pathlib.Path, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """A config file's `get_config()` with `section.key=value` overrides applied."""
    return apply_overrides(call_file_function(path, "get_config"), overrides, str(path))


def model_config(config: ml_collections.ConfigDict) -> MATConfig:
    """The static architecture (frozen dataclass) from a config's `model` section."""
    return MATConfig.from_dict(config.model.to_dict())


def as_plain(config: ml_collections.ConfigDict) -> dict:
    """A config as the plain dict its `config.json` holds (tuples as lists): what runs are compared by."""
    import json

    return json.loads(config.to_json_best_effort(sort_keys=True))


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"section.key": value} of a plain (nested) config dict, leaves only."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def differences(config: dict, base: dict, ignore: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """{key: (base value, config value)} of the leaves where two plain config dicts differ (a key only one of them
    has reads as None in the other), keys in `ignore` left out."""
    a, b = flatten(base), flatten(config)
    keys = sorted((set(a) | set(b)) - set(ignore))
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


def override_of(key: str, value: Any) -> str:
    """The `key=value` override that sets `key` to a value read from a plain config dict (lists back to tuples; a
    string that `parse_value` keeps as a string is written bare)."""
    if isinstance(value, str) and parse_value(value) == value:
        return f"{key}={value}"
    return f"{key}={tuple(value) if isinstance(value, list) else value!r}"
