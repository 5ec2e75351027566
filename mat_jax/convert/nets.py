"""Which net and which resolution a flat official-name state dict holds, and whether it is complete.

Why: users hand us files without saying what is in them (a G_ema export, a D, a 256 or a 512 model).
The answer follows from the keys alone; the full check then compares against the official layout table
(`weights.layout.official_table`, validated by `weights.layout.check_state_dict`) so that every missing,
unexpected, mis-shaped or non-numeric entry is reported by name at once.

Files holding several nets use key prefixes `G.`, `D.`, `G_ema.` (see `formats` for the convention);
`split_nets` undoes that. Official names never start with those prefixes (G names start with
`synthesis.` / `mapping.`, D names with `Dis`, `fc0`, `fc1`), so the test is unambiguous.
"""

from __future__ import annotations

import collections
import re
from typing import Mapping

import numpy as np

from mat_jax.convert.errors import ConversionError
from mat_jax.models.constants import SUPPORTED_RESOLUTIONS, official_nf
from mat_jax.weights.layout import check_state_dict, official_table

__all__ = ["NET_KIND", "NET_PREFIXES", "split_nets", "join_nets", "infer_layout", "validate_state_dict"]

NET_KIND = {"G": "G", "G_ema": "G", "D": "D"}  # net name -> network kind (G_ema is a G)
NET_KIND = {"G": "G", "G_ema": "G", "D": "D"}  # net name -> network kind (G_ema is a G)
NET_PREFIXES = ("G_ema", "G", "D")  # G_ema first: "G_ema." also starts with "G"
_DEC_RE = re.compile(r"^synthesis\.dec\.Dec_(\d+)x\1\.")
_DIS_RE = re.compile(r"^Dis\.(\d+)\.")


def split_nets(flat: Mapping[str, np.ndarray], source: str) -> dict[str, dict[str, np.ndarray]]:
    """{net: state} from a flat dict; un-prefixed official names form a single unnamed net ''."""
    nets: dict[str, dict[str, np.ndarray]] = collections.OrderedDict()
    for key, value in flat.items():
        net = next((p for p in NET_PREFIXES if key.startswith(p + ".")), "")
        nets.setdefault(net, collections.OrderedDict())[key[len(net) + 1 :] if net else key] = value
    if "" in nets and len(nets) > 1:
        named = ", ".join(n for n in nets if n)
        example = next(iter(nets[""]))
        raise ConversionError(
            f"{source}: mixes prefixed nets ({named}) with un-prefixed keys such as {example!r}; "
            "a multi-net file must prefix every key with G., D. or G_ema."
        )
    return nets


def join_nets(nets: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Inverse of `split_nets`: one net is written un-prefixed, several with `<net>.` prefixes."""
    if len(nets) == 1:
        return collections.OrderedDict(next(iter(nets.values())))
    flat: dict[str, np.ndarray] = collections.OrderedDict()
    for net, state in nets.items():
        if net not in NET_PREFIXES:
            raise ConversionError(f"cannot store net {net!r}; expected one of {', '.join(NET_PREFIXES)}")
        flat.update((f"{net}.{k}", v) for k, v in state.items())
    return flat


def _describe(keys: list[str]) -> str:
    prefixes = collections.Counter(k.split(".", 1)[0] for k in keys)
    top = ", ".join(f"{p}.* ({n})" for p, n in prefixes.most_common(8))
    return f"{len(keys)} keys; top-level names: {top or 'none'}"


def infer_layout(state: Mapping[str, np.ndarray], source: str) -> tuple[str, int]:
    """('G' or 'D', resolution) from key names and shapes. Raises if the keys fit no MAT layout."""
    keys = list(state)
    has_g = any(k.startswith("synthesis.") for k in keys) and any(k.startswith("mapping.") for k in keys)
    has_d = any(k.startswith("Dis.") for k in keys)
    if has_g and not has_d:
        decs = {int(m.group(1)) for k in keys if (m := _DEC_RE.match(k))}
        if not decs:
            raise ConversionError(f"{source}: looks like a MAT generator but has no synthesis.dec.Dec_RxR.* keys")
        res = max(decs)
        if res not in SUPPORTED_RESOLUTIONS:
            raise ConversionError(
                f"{source}: generator whose largest decoder block is synthesis.dec.Dec_{res}x{res}; "
                f"MAT exists only at {SUPPORTED_RESOLUTIONS}"
            )
        return "G", res
    if has_d and not has_g:
        blocks = {int(m.group(1)) for k in keys if (m := _DIS_RE.match(k))}
        res = 2 ** max(blocks)  # last index of Dis is the final conv, at index log2(R)
        if res not in SUPPORTED_RESOLUTIONS:
            first = state.get("Dis.0.conv.weight")
            hint = f", Dis.0.conv.weight shape {tuple(first.shape)}" if first is not None else ""
            raise ConversionError(
                f"{source}: discriminator whose last block is Dis.{max(blocks)} (resolution {res}{hint}); "
                f"MAT exists only at {SUPPORTED_RESOLUTIONS}"
            )
        first = state.get("Dis.0.conv.weight")
        if first is not None and tuple(first.shape)[:1] != (official_nf(res),):
            raise ConversionError(
                f"{source}: Dis.0.conv.weight has shape {tuple(first.shape)} but the Dis.* block count says "
                f"resolution {res} (expected {official_nf(res)} output channels)"
            )
        return "D", res
    what = "both generator and discriminator keys" if has_g and has_d else "neither generator nor discriminator keys"
    raise ConversionError(
        f"{source}: fits no known MAT layout ({what}): {_describe(keys)}. Expected official names such as "
        "'synthesis.*' + 'mapping.*' (G) or 'Dis.*' + 'fc0.*' (D), optionally prefixed 'G.', 'D.', 'G_ema.'."
    )


def validate_state_dict(
    state: Mapping[str, np.ndarray], net: str, resolution: int, source: str
) -> collections.OrderedDict:
    """Check `state` against the official layout of (net, resolution); return it in official order.

    Every missing, unexpected, mis-shaped and non-numeric key (and wrong constant buffer) is listed in one error."""
    expected = official_table(net, resolution)
    check_state_dict(state, expected, net, resolution, source)
    return collections.OrderedDict((e.official, state[e.official]) for e in expected)
