"""The one table between mat-jax Flax variables and official MAT state_dict names (numpy only).

`build_table(cfg, net)` lists every state_dict entry of a network built from `cfg` (any `MATConfig` the JAX
model builds, official or not) in official `state_dict()` order: a module's own parameters, then its own
buffers, then its children in the official constructors' registration order (`Generator` registers
`synthesis` before `mapping`). Each `Entry` carries the official name and shape, parameter or buffer, the
Flax collection and path, and the layout transform between them:

| transform | official (PyTorch)        | mat-jax (Flax)            |
|-----------|---------------------------|---------------------------|
| fc        | weight [out, in]          | weight [in, out]          |
| conv      | weight [O, I, k, k]       | weight [k, k, I, O] HWIO  |
| modconv   | weight [1, O, I, k, k]    | weight [k, k, I, O] HWIO  |
| same      | bias, noise_strength [], noise_const, w_avg, LayerNorm scale/bias | unchanged |
| constant  | resample_filter, attn_mask | not stored: recomputed, checked on import |

Names: an official name is the Flax path joined by '.', where a list index that Flax folds into the module
name (`tran_0`, `blocks_1`, `Dis_3`, `conv_2`) is a separate component officially (`tran.0`, `blocks.1`,
`Dis.3`, `conv.2`). `official_name()` is the only place that knows this. Modules that exist only in mat-jax
ablations keep their Flax names (`norm1.scale`); their order follows the PyTorch convention (LayerNorms
before the sublayer they normalise, the conditional `embed` before the mapping FCs, the discriminator's
`mapping` first). Ablations that drop modules list only the entries they build: `stages=1` has no stage-2
`synthesis.*` entries (only `synthesis.first_stage.*` and the mapping), `d_stage1=False` no `Dis_stg1.*` /
`fc*_stg1.*`.

`check_state_dict` is the one validator of official-layout state dicts (every missing, unexpected,
mis-shaped, non-numeric key and every constant buffer with non-official values named in one
`CheckpointError`); `official_to_variables` / `variables_to_official` convert. `tests/test_weights_layout.py`
checks the table against the golden key lists and against the Flax `jax.eval_shape` tree.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Any, Mapping

import numpy as np

from mat_jax.models import constants
from mat_jax.models.config import MATConfig, nf
from mat_jax.weights.errors import CheckpointError

__all__ = [
    "BUFFER_LEAVES",
    "CheckpointLayoutError",
    "Entry",
    "NETS",
    "SUPPORTED_RESOLUTIONS",
    "abstract_variables",
    "build_table",
    "check_state_dict",
    "constant_value",
    "official_name",
    "official_table",
    "official_to_variables",
    "variables_to_official",
]

CheckpointLayoutError = CheckpointError  # historical name
SUPPORTED_RESOLUTIONS = constants.SUPPORTED_RESOLUTIONS
NETS = ("G", "D")
BUFFER_LEAVES = ("noise_const", "w_avg")
_LIST_COMPONENT = re.compile(r"^(tran|blocks|enc_conv|dec_conv|down_conv|conv|Dis|Dis_stg1)_(\d+)$")
Path = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Entry:
    official: str  # e.g. 'synthesis.first_stage.tran.0.blocks.1.attn.q.weight'
    shape: tuple[int, ...]  # official shape
    kind: str  # 'parameter' | 'buffer' (as the official state_dict has it)
    collection: str  # 'params' | 'buffers' | 'constant'
    path: Path  # Flax path inside the collection (module path + leaf name for constants)
    transform: str  # 'fc' | 'conv' | 'modconv' | 'same' | 'constant'

    @property
    def flax_shape(self) -> tuple[int, ...] | None:
        """Shape of the Flax variable (None for constants, which Flax does not store)."""
        if self.transform == "constant":
            return None
        return tuple(_to_flax(np.empty(self.shape, np.uint8), self.transform).shape)


def official_name(path: Path) -> str:
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


def _to_flax(x: np.ndarray, transform: str) -> np.ndarray:
    if transform == "fc":
        return x.T
    if transform == "conv":
        return x.transpose(2, 3, 1, 0)
    if transform == "modconv":
        return x[0].transpose(2, 3, 1, 0)
    return x


# ----------------------------------------------------------------------------------------------------------
# The table


class _Builder:
    """Collects entries in state_dict order; the helpers mirror the official module types (networks/*.py)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def _add(self, path: Path, shape: tuple[int, ...], coll: str, transform: str) -> None:
        kind = "parameter" if coll == "params" else "buffer"
        self.entries.append(Entry(official_name(path), tuple(shape), kind, coll, path, transform))

    def param(self, path: Path, shape: tuple[int, ...], transform: str = "same") -> None:
        self._add(path, shape, "params", transform)

    def fc(self, p: Path, cin: int, cout: int) -> None:  # FullyConnectedLayer / EqDense
        self.param(p + ("weight",), (cout, cin), "fc")
        self.param(p + ("bias",), (cout,))

    def conv(self, p: Path, cin: int, cout: int, k: int, bias: bool = True) -> None:  # Conv2dLayer / EqConv2d
        self.param(p + ("weight",), (cout, cin, k, k), "conv")
        if bias:
            self.param(p + ("bias",), (cout,))
        self._add(p + ("resample_filter",), (4, 4), "constant", "constant")

    def modconv(self, p: Path, cin: int, cout: int, k: int, style_dim: int) -> None:
        self.param(p + ("weight",), (1, cout, cin, k, k), "modconv")
        self._add(p + ("resample_filter",), (4, 4), "constant", "constant")
        self.fc(p + ("affine",), style_dim, cin)

    def style_conv(self, p: Path, cin: int, cout: int, style_dim: int, noise_res: int | None) -> None:
        if noise_res is not None:
            self.param(p + ("noise_strength",), ())
        self.param(p + ("bias",), (cout,))
        if noise_res is not None:
            self._add(p + ("noise_const",), (noise_res, noise_res), "buffers", "same")
        self.modconv(p + ("conv",), cin, cout, 3, style_dim)

    def to_rgb(self, p: Path, cin: int, style_dim: int, img_channels: int) -> None:
        self.param(p + ("bias",), (img_channels,))
        self._add(p + ("resample_filter",), (4, 4), "constant", "constant")
        self.modconv(p + ("conv",), cin, img_channels, 1, style_dim)

    def layer_norm(self, p: Path, d: int) -> None:  # flax.linen.LayerNorm
        self.param(p + ("scale",), (d,))
        self.param(p + ("bias",), (d,))

    def mapping(self, p: Path, cfg: MATConfig, z_dim: int, w_dim: int, w_avg: bool) -> None:  # MappingNet
        if w_avg:
            self._add(p + ("w_avg",), (w_dim,), "buffers", "same")  # own buffer precedes the fc children
        if cfg.c_dim > 0:
            self.fc(p + ("embed",), cfg.c_dim, w_dim)
        cin = (z_dim if z_dim > 0 else 0) + (w_dim if cfg.c_dim > 0 else 0)
        for i in range(cfg.mapping_layers):
            self.fc(p + (f"fc{i}",), cin if i == 0 else w_dim, w_dim)


def _swin_block(b: _Builder, p: Path, cfg: MATConfig, token_size: int, window: int, shift_requested: bool) -> None:
    d, hidden = cfg.stage1_dim, int(cfg.stage1_dim * cfg.stage1_mlp_ratio)
    if cfg.attention != "full":  # 'full' attends over the whole map: one window, never shifted
        ws, shift = constants.effective_window(token_size, window, shift_requested)
        if shift:
            n_windows = (token_size // ws) ** 2
            b._add(p + ("attn_mask",), (n_windows, ws * ws, ws * ws), "constant", "constant")
    prenorm = cfg.block == "prenorm_residual"
    if prenorm:
        b.layer_norm(p + ("norm1",), d)
    for name in ("q", "k", "v", "proj"):
        b.fc(p + ("attn", name), d, d)
    if prenorm:
        b.layer_norm(p + ("norm2",), d)
    else:
        b.fc(p + ("fuse",), 2 * d, d)
    b.fc(p + ("mlp", "fc1"), d, hidden)
    b.fc(p + ("mlp", "fc2"), hidden, d)


def _first_stage(b: _Builder, p: Path, cfg: MATConfig) -> None:
    d, img = cfg.stage1_dim, cfg.img_channels
    if cfg.stage1_embed == "linear_patch":  # not an official module: named after its Flax path
        b.fc(p + ("patch_embed", "proj"), (img + 1) * 4**cfg.stage1_n_down, d)
    else:
        b.conv(p + ("conv_first", "conv"), img + 1, d, 3)
        for i in range(cfg.stage1_n_down):
            b.conv(p + (f"enc_conv_{i}", "conv"), d, d, 3)
    for t, (depth, window, size) in enumerate(
        zip(cfg.stage1_depths, cfg.stage1_window_sizes, cfg.stage1_token_sizes, strict=True)
    ):
        tp = p + (f"tran_{t}",)
        if t > 0:  # PatchMerging (t=1,2) / PatchUpsampling (t=3,4)
            b.conv(tp + ("downsample", "conv", "conv"), d, d, 3)
        for j in range(depth):
            _swin_block(b, tp + (f"blocks_{j}",), cfg, size, window, cfg.shifted_windows and j % 2 == 1)
        b.conv(tp + ("conv", "conv"), d, d, 3)
    for i in range(cfg.stage1_global_downs):
        b.conv(p + (f"down_conv_{i}",), d, d, 3)
    b.fc(p + ("to_style",), d, 2 * d)
    b.fc(p + ("ws_style",), cfg.w_dim, d)
    if cfg.style_manipulation:
        b.fc(p + ("to_square",), d, 16 * 16)
    style_dim = 3 * d
    for i in range(cfg.stage1_n_down):
        dp = p + (f"dec_conv_{i}",)
        b.style_conv(dp + ("conv0",), d, d, style_dim, None)
        b.style_conv(dp + ("conv1",), d, d, style_dim, None)
        b.to_rgb(dp + ("toRGB",), d, style_dim, img)


def _generator(b: _Builder, cfg: MATConfig) -> None:
    _first_stage(b, ("synthesis", "first_stage"), cfg)
    if cfg.stages == 2:
        _second_stage(b, cfg)
    b.mapping(("mapping",), cfg, cfg.z_dim, cfg.w_dim, w_avg=cfg.w_avg_beta is not None)


def _second_stage(b: _Builder, cfg: MATConfig) -> None:  # the synthesis entries after first_stage (stages=2)
    img, log2 = cfg.img_channels, cfg.res_log2
    for r_log2 in range(log2, 3, -1):  # encoder, full res -> 16
        r = 2**r_log2
        ep = ("synthesis", "enc", f"EncConv_Block_{r}x{r}")
        if r_log2 == log2:  # EncFromRGB on [mask-0.5, composite, masked image]
            b.conv(ep + ("conv0",), 2 * img + 1, nf(cfg, r), 1)
        else:  # ConvBlockDown
            b.conv(ep + ("conv0",), nf(cfg, 2 * r), nf(cfg, r), 3)
        b.conv(ep + ("conv1",), nf(cfg, r), nf(cfg, r), 3)
    if cfg.style_manipulation:
        b.fc(("synthesis", "to_square"), cfg.w_dim, 16 * 16)
    for i in range(3):
        b.conv(("synthesis", "to_style", f"conv_{i}"), nf(cfg, 16), nf(cfg, 16), 3)
    b.fc(("synthesis", "to_style", "fc"), nf(cfg, 16), 2 * nf(cfg, 4))
    style_dim = cfg.stage2_style_dim
    dec = ("synthesis", "dec", "Dec_16x16")
    b.conv(dec + ("conv0",), nf(cfg, 16), nf(cfg, 16), 3)
    b.style_conv(dec + ("conv1",), nf(cfg, 16), nf(cfg, 16), style_dim, 16)
    b.to_rgb(dec + ("toRGB",), nf(cfg, 16), style_dim, img)
    for r_log2 in range(5, log2 + 1):
        r = 2**r_log2
        dp = ("synthesis", "dec", f"Dec_{r}x{r}")
        b.style_conv(dp + ("conv0",), nf(cfg, r // 2), nf(cfg, r), style_dim, r)
        b.style_conv(dp + ("conv1",), nf(cfg, r), nf(cfg, r), style_dim, r)
        b.to_rgb(dp + ("toRGB",), nf(cfg, r), style_dim, img)


def _discriminator(b: _Builder, cfg: MATConfig) -> None:
    log2, c4 = cfg.res_log2, nf(cfg, 4)
    cmap_dim = c4 if cfg.c_dim > 0 else 0
    if cfg.c_dim > 0:  # the class embedding network (registered before the branches)
        b.mapping(("mapping",), cfg, 0, cmap_dim, w_avg=False)
    branches = (("Dis", "", 1), ("Dis_stg1", "_stg1", 2)) if cfg.d_stage1 else (("Dis", "", 1),)
    for prefix, fc_suffix, div in branches:
        b.conv((f"{prefix}_0", "conv"), cfg.img_channels + 1, nf(cfg, cfg.resolution) // div, 1)  # DisFromRGB
        for i, r_log2 in enumerate(range(log2, 2, -1), start=1):  # DisBlock R -> R/2, down to 4x4
            cin, cout = nf(cfg, 2**r_log2) // div, nf(cfg, 2 ** (r_log2 - 1)) // div
            b.conv((f"{prefix}_{i}", "conv0"), cin, cin, 3)
            b.conv((f"{prefix}_{i}", "conv1"), cin, cout, 3)
            b.conv((f"{prefix}_{i}", "skip"), cin, cout, 1, bias=False)
        # index log2-1 is the minibatch-std layer (no entries)
        b.conv((f"{prefix}_{log2}",), c4 // div + cfg.mbstd_num_channels, c4 // div, 3)
        b.fc((f"fc0{fc_suffix}",), c4 // div * 16, c4 // div)
        b.fc((f"fc1{fc_suffix}",), c4 // div, 1 if cmap_dim == 0 else cmap_dim)


def build_table(cfg: MATConfig, net: str) -> list[Entry]:
    """All entries of `net` ('G' (also for G_ema) or 'D') built from `cfg`, in official state_dict order."""
    b = _Builder()
    if net in ("G", "G_ema"):
        _generator(b, cfg)
    elif net == "D":
        _discriminator(b, cfg)
    else:
        raise ValueError(f"unknown net {net!r}; expected one of G, G_ema, D")
    names = [e.official for e in b.entries]
    if len(set(names)) != len(names):
        raise AssertionError("layout table has duplicate official names")
    return b.entries


def official_table(net: str, resolution: int) -> list[Entry]:
    """The table of an official network ('G', 'G_ema' or 'D' at 128, 256 or 512): the released architecture."""
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"unsupported MAT resolution {resolution}; the official code builds {SUPPORTED_RESOLUTIONS}")
    return build_table(MATConfig(resolution=resolution), net)


def constant_value(entry: Entry, cfg: MATConfig | None = None) -> np.ndarray:
    """The official value of a constant buffer (from its name and shape alone; `cfg` is not needed)."""
    if entry.path[-1] == "resample_filter":
        return constants.resample_filter()
    if entry.path[-1] == "attn_mask":  # [nW, ws*ws, ws*ws] on a square map, shift ws // 2
        ws = int(round(entry.shape[1] ** 0.5))
        size = int(round(entry.shape[0] ** 0.5)) * ws
        return constants.shifted_window_mask(size, size, ws, ws // 2)
    raise KeyError(entry.official)


# ----------------------------------------------------------------------------------------------------------
# Validation and conversion


def _is_numeric(v: object) -> bool:
    dt = getattr(v, "dtype", None)
    try:
        dt = np.dtype(dt) if dt is not None else np.asarray(v).dtype
    except (TypeError, ValueError):
        return False
    return dt.kind in "fiub" or dt.name == "bfloat16"


def check_state_dict(state: Mapping[str, Any], table: list[Entry], net: str, resolution: int, source: str) -> None:
    """Raise one CheckpointError naming every missing, unexpected, mis-shaped or non-numeric key of the
    official-layout `state` and every constant buffer whose values differ from the official ones."""
    want = {e.official: e for e in table}
    missing = [n for n in want if n not in state]
    unexpected = [k for k in state if k not in want]
    misshaped, not_numeric, wrong_const = [], [], []
    for k, v in state.items():
        e = want.get(k)
        if e is None:
            continue
        if not _is_numeric(v):
            not_numeric.append(k)
        elif tuple(np.shape(v)) != e.shape:
            misshaped.append(f"{k}: expected {list(e.shape)}, found {list(np.shape(v))}")
        elif e.collection == "constant" and not np.array_equal(np.asarray(v, np.float32), constant_value(e)):
            wrong_const.append(k)
    parts = [
        f"{len(items)} {title}: " + sep.join(items)
        for title, items, sep in (
            ("missing", missing, ", "),
            ("unexpected", unexpected, ", "),
            ("mis-shaped key(s)", misshaped, "; "),
            ("not a numeric array", not_numeric, ", "),
            ("constant buffer(s) with non-official values", wrong_const, ", "),
        )
        if items
    ]
    if parts:
        raise CheckpointError(
            f"{source}: does not match the official {net} layout at resolution {resolution}\n  " + "\n  ".join(parts)
        )


def _unflatten(flat: Mapping[Path, Any]) -> dict:
    out: dict = {}
    for path, v in flat.items():
        d = out
        for p in path[:-1]:
            d = d.setdefault(p, {})
        d[path[-1]] = v
    return out


def _flatten(tree: Mapping, prefix: Path = ()) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def official_to_variables(
    state_dict: Mapping[str, Any], cfg: MATConfig, net: str, source: str = "weights", table: list[Entry] | None = None
) -> dict:
    """Official-layout arrays -> {'params': ..., 'buffers': ...} (numpy float32 trees).

    Raises CheckpointError (`check_state_dict`) naming every bad key at once."""
    table = table if table is not None else build_table(cfg, net)
    check_state_dict(state_dict, table, net, cfg.resolution, source)
    out: dict[str, dict] = {"params": {}, "buffers": {}}
    for e in table:
        if e.collection != "constant":
            arr = np.asarray(state_dict[e.official]).astype(np.float32)
            out[e.collection][e.path] = np.array(_to_flax(arr, e.transform), order="C")
    return {k: _unflatten(v) for k, v in out.items() if v}


def variables_to_official(
    variables: Mapping[str, Any], cfg: MATConfig, net: str, table: list[Entry] | None = None
) -> collections.OrderedDict[str, np.ndarray]:
    """Flax variables -> official-layout float32 arrays (constants recomputed), in table order."""
    table = table if table is not None else build_table(cfg, net)
    flat = {coll: _flatten(dict(variables.get(coll, {}))) for coll in ("params", "buffers")}
    out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for e in table:
        if e.collection == "constant":
            out[e.official] = constant_value(e)
            continue
        try:
            leaf = flat[e.collection][e.path]
        except KeyError:
            raise CheckpointError(f"variables lack {e.collection}/{'/'.join(e.path)} ({e.official})") from None
        out[e.official] = np.array(_to_official(np.asarray(leaf, np.float32), e.transform), order="C")
    return out


def abstract_variables(cfg: MATConfig, net: str) -> dict:
    """Shapes of the Flax variables ({'params': ..., 'buffers': ...}) without computing anything (needs jax)."""
    import jax  # lazy: the table itself is numpy-only
    import jax.numpy as jnp

    from mat_jax.models import Discriminator, Generator

    r = cfg.resolution
    img = jnp.zeros((1, r, r, cfg.img_channels))
    mask = jnp.ones((1, r, r, 1))
    c = jnp.zeros((1, cfg.c_dim)) if cfg.c_dim else None
    keys = {"params": jax.random.key(0), "smm": jax.random.key(1), "noise": jax.random.key(2)}
    if net in ("G", "G_ema"):
        fn = lambda: Generator(cfg).init(keys, img, mask, jnp.zeros((1, cfg.z_dim)), c)  # noqa: E731
    elif net == "D":
        fn = lambda: Discriminator(cfg).init(keys, img, mask, img, c)  # noqa: E731
    else:
        raise ValueError(f"net must be 'G' or 'D', got {net!r}")
    return jax.eval_shape(fn)
