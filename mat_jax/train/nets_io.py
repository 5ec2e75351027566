"""The nets of any MAT checkpoint as Flax variables, and back: the one loader behind every command.

    loaded = load_nets("runs/demo", ("G_ema",))              # latest complete step of a training run
    loaded = load_nets("Places_512_FullData.pkl", ("G", "D", "G_ema"), cfg=my_cfg)   # checked against my_cfg
    save_nets("g.safetensors", loaded.cfg, loaded.nets)      # official names (+ model config if non-official)

Sources, tried in this order:
  * a training run: its workdir, `checkpoints/` or one step directory (`step` picks another; see `run_dir`);
  * a mat-jax checkpoint directory (orbax + `model_config.json`, see `convert.orbax_dir`);
  * a weight file in official names (`.pkl`, `.pt`/`.pth`, `.safetensors`, `.npz`). Its architecture is, in order:
    the `cfg` argument, a `<file>.model_config.json` beside it (written on export of a non-official
    architecture), else the official network read off the keys.

Net names: 'G', 'G_ema', 'D'. A source holding a single generator (an un-prefixed official state dict, or a
directory with one generator) satisfies both 'G' and 'G_ema'. With `cfg`, every net is checked against that
architecture and a mismatch raises one error naming every missing, unexpected or mis-shaped key.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Mapping

from mat_jax.convert import orbax_dir
from mat_jax.convert.errors import ConversionError
from mat_jax.convert.formats import handler_for, read_checkpoint, read_model_config_sidecar, write_checkpoint
from mat_jax.convert.nets import NET_KIND, split_nets
from mat_jax.models.config import MATConfig
from mat_jax.train import run_dir
from mat_jax.weights.layout import SUPPORTED_RESOLUTIONS, official_to_variables, variables_to_official

log = logging.getLogger("mat_jax")

ALL_NETS = ("G_ema", "G", "D")


@dataclasses.dataclass
class LoadedNets:
    cfg: MATConfig
    nets: dict[str, dict]  # {net: {'params': ..., 'buffers': ...}} numpy trees
    source: str  # the file, directory or run step that was read
    step: int | None = None  # training step, for a run

    def describe(self) -> str:
        where = self.source if self.step is None else f"{self.source} (step {self.step})"
        return f"{', '.join(self.nets)} of {where}, {self.cfg.resolution}x{self.cfg.resolution}"


def is_official_architecture(cfg: MATConfig) -> bool:
    """True when `cfg`'s weights have the released networks' layout (the official `Generator`/`Discriminator` at
    a supported resolution; neither the minibatch-std group size nor the execution fields change a weight)."""
    return cfg.resolution in SUPPORTED_RESOLUTIONS and cfg.architecture().replace(
        mbstd_group_size=MATConfig.mbstd_group_size
    ) == MATConfig(resolution=cfg.resolution)


def _check_nets(nets: tuple[str, ...]) -> None:
    bad = [n for n in nets if n not in NET_KIND]
    if bad or not nets:
        raise ConversionError(f"nets must be among {', '.join(ALL_NETS)}; got {list(nets)}")


def _retarget(loaded: LoadedNets, cfg: MATConfig | None) -> LoadedNets:
    """The same weights as variables of `cfg` (through the official names: mismatches list every key)."""
    if cfg is None or cfg == loaded.cfg:
        return loaded
    if cfg.architecture() == loaded.cfg.architecture():  # only how the networks run differs
        return dataclasses.replace(loaded, cfg=cfg)
    nets = {}
    for name, variables in loaded.nets.items():
        kind = NET_KIND[name]
        state = variables_to_official(variables, loaded.cfg, kind)
        nets[name] = official_to_variables(state, cfg, kind, source=f"{loaded.source} [{name}]")
    return dataclasses.replace(loaded, cfg=cfg, nets=nets)


def _pick(available: list[str], want: str, source: str) -> str:
    """The stored net that serves `want` (a lone generator serves G and G_ema)."""
    if want in available:
        return want
    gens = [n for n in available if NET_KIND.get(n, n) == "G"]
    if NET_KIND[want] == "G" and len(gens) == 1:
        return gens[0]
    raise ConversionError(f"{source}: has no net {want!r} (it holds: {', '.join(available) or 'nothing'})")


def _keys_kind(state: Mapping, source: str) -> str:
    if any(k.startswith("synthesis.") for k in state):
        return "G"
    if any(k.startswith("Dis.") for k in state):
        return "D"
    raise ConversionError(f"{source}: holds neither generator ('synthesis.*') nor discriminator ('Dis.*') keys")


def _read_states(path: str, nets: tuple[str, ...], fmt: str | None) -> dict[str, Mapping]:
    """{net: official state dict} straight from a file, not checked against any layout yet."""
    flat, _ = handler_for(path, fmt).read(path)
    found = split_nets(flat, path)
    if "" in found:  # one un-prefixed net: name it by its keys
        found = {"G_ema" if _keys_kind(found[""], path) == "G" else "D": found[""]}
    return {want: found[_pick(list(found), want, path)] for want in nets}


def available_nets(src: str | os.PathLike, fmt: str | None = None) -> tuple[str, ...]:
    """The nets a source holds (a run: all three; a lone official generator is listed as G_ema)."""
    path = os.fspath(src)
    if fmt is None and run_dir.is_run(path):
        return ALL_NETS
    if fmt in (None, "orbax") and os.path.isdir(path) and orbax_dir.is_checkpoint_dir(path):
        return tuple(orbax_dir.net_names(path))
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such file or directory")
    flat, _ = handler_for(path, fmt).read(path)
    found = split_nets(flat, path)
    if "" in found:
        return ("G_ema",) if _keys_kind(found[""], path) == "G" else ("D",)
    return tuple(found)


def carries_model_config(src: str | os.PathLike, fmt: str | None = None) -> bool:
    """True for sources that store their own architecture (a run, a mat-jax directory, a file with a
    `.model_config.json` beside it), which may be any MATConfig, not only the official networks."""
    path = os.fspath(src)
    return (
        (fmt is None and run_dir.is_run(path))
        or (fmt in (None, "orbax") and os.path.isdir(path) and orbax_dir.is_checkpoint_dir(path))
        or (os.path.isfile(path) and read_model_config_sidecar(path) is not None)
    )


def load_nets(
    src: str | os.PathLike,
    nets: tuple[str, ...] = ("G_ema",),
    *,
    step: int | None = None,
    fmt: str | None = None,
    cfg: MATConfig | None = None,
) -> LoadedNets:
    """Read `nets` from any checkpoint source (see the module docstring) as numpy Flax variable trees."""
    _check_nets(nets)
    path = os.fspath(src)
    if fmt is None and run_dir.is_run(path):
        run = run_dir.locate(path, step)
        run_cfg = run_dir.model_config(run.workdir)
        got = run_dir.restore_nets(run, tuple(dict.fromkeys(nets)))
        return _retarget(LoadedNets(run_cfg, got, str(run.workdir), run.step), cfg)
    if step is not None:
        raise ConversionError(f"{path}: a step ({step}) can only be chosen in a training run")
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such file or directory")
    if fmt in (None, "orbax") and os.path.isdir(path) and orbax_dir.is_checkpoint_dir(path):
        available = orbax_dir.net_names(path)
        stored = {want: _pick(available, want, path) for want in nets}
        dir_cfg, got = orbax_dir.load_variables(path, tuple(dict.fromkeys(stored.values())))
        loaded = LoadedNets(dir_cfg, {want: got[name] for want, name in stored.items()}, path)
        return _retarget(loaded, cfg)
    side = read_model_config_sidecar(path)
    if cfg is None and side is None:  # an official network: layout read off the keys and validated
        ckpt = read_checkpoint(path, nets=nets, fmt=fmt)
        file_cfg = MATConfig(resolution=ckpt.resolution)
        variables = {
            n: official_to_variables(s, file_cfg, NET_KIND[n], source=f"{path} [{n}]") for n, s in ckpt.nets.items()
        }
        return LoadedNets(file_cfg, variables, path)
    if cfg is None:
        try:
            cfg = MATConfig.from_dict(side)
        except (ValueError, TypeError) as e:
            raise ConversionError(f"{path}: its model config is not valid ({e})") from None
    states = _read_states(path, nets, fmt)
    variables = {n: official_to_variables(s, cfg, NET_KIND[n], source=f"{path} [{n}]") for n, s in states.items()}
    return LoadedNets(cfg, variables, path)


def save_nets(
    dst: str | os.PathLike,
    cfg: MATConfig,
    nets: Mapping[str, Mapping],
    *,
    fmt: str | None = None,
    dtype: str | None = None,
) -> None:
    """Write Flax variables: a mat-jax directory keeps them as they are; a file stores official names (one net
    un-prefixed, several prefixed), and for a non-official architecture also `<dst>.model_config.json`."""
    _check_nets(tuple(nets))
    path = os.fspath(dst)
    if handler_for(path, fmt).directory:
        if dtype is not None:
            raise ConversionError(f"{path}: a mat-jax directory stores float32 variables; --dtype applies to files")
        orbax_dir.save_variables(path, nets, cfg)
        return
    official = {n: variables_to_official(v, cfg, NET_KIND[n]) for n, v in nets.items()}
    write_checkpoint(
        path, official, fmt=fmt, dtype=dtype, model_config=None if is_official_architecture(cfg) else cfg.to_dict()
    )


def load_generator(
    src: str | os.PathLike, net: str = "G_ema", *, step: int | None = None, fmt: str | None = None
) -> LoadedNets:
    """One generator ('G_ema' or 'G') for inference, logged with where it came from."""
    if net not in ("G_ema", "G"):
        raise ConversionError(f"net must be 'G_ema' or 'G' for inpainting, got {net!r}")
    loaded = load_nets(src, (net,), step=step, fmt=fmt)
    log.info("loaded %s", loaded.describe())
    return loaded
