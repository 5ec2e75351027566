"""`mat-jax info`: parameter counts per submodule and XLA FLOPs per forward for a model config."""

from __future__ import annotations

import argparse
from collections import OrderedDict


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="parameter counts per submodule and FLOPs per forward of a config", description=__doc__
    )
    p.add_argument("--config", default=None, help="config file (configs/*.py); default: the official 512 model")
    p.add_argument("--resolution", type=int, default=None, help="override model.resolution")
    p.add_argument("--batch", type=int, default=1, help="batch size for the FLOP count (default 1)")
    p.add_argument("--detail", action="store_true", help="one more level of submodules")
    p.add_argument("--no-flops", action="store_true", help="skip the XLA FLOP count (lowering takes seconds)")
    p.set_defaults(func=run)


def _group(name: str, detail: bool) -> str:
    """Top-level submodule of an official name (two levels under `synthesis`), +1 level with detail."""
    parts = name.split(".")[:-1]  # drop the leaf (weight/bias/...)
    depth = 2 if parts[0] == "synthesis" else 1
    depth += 1 if detail else 0
    keep, i = [], 0
    while i < len(parts) and len(keep) < depth:
        keep.append(parts[i])
        if i > 0 and i + 1 < len(parts) and parts[i + 1].isdigit():  # `tran.0`: the index belongs to the name
            keep[-1] += "." + parts[i + 1]
            i += 1
        i += 1
    return ".".join(keep)


def param_counts(cfg, net: str, detail: bool = False) -> "OrderedDict[str, int]":
    """{submodule: #parameters} in official naming, plus '<total>'."""
    from mat_jax.weights.layout import build_table

    counts: OrderedDict[str, int] = OrderedDict()
    total = 0
    for e in build_table(cfg, net):
        if e.collection != "params":
            continue
        n = 1
        for s in e.shape:
            n *= s
        key = _group(e.official, detail)
        counts[key] = counts.get(key, 0) + n
        total += n
    counts["<total>"] = total
    return counts


def forward_flops(cfg, net: str, batch: int) -> float:
    """FLOPs of one forward (G: mapping + synthesis; D: both branches) from XLA's cost analysis."""
    import jax
    import jax.numpy as jnp

    from mat_jax.models import Discriminator, Generator
    from mat_jax.weights.layout import abstract_variables

    r = cfg.resolution
    variables = abstract_variables(cfg, net)
    img = jax.ShapeDtypeStruct((batch, r, r, cfg.img_channels), jnp.float32)
    mask = jax.ShapeDtypeStruct((batch, r, r, 1), jnp.float32)
    if net == "G":
        z = jax.ShapeDtypeStruct((batch, cfg.z_dim), jnp.float32)
        fn = lambda v, i, m, z: Generator(cfg).apply(v, i, m, z, noise_mode="const", smm_maps="ones")
        lowered = jax.jit(fn).lower(variables, img, mask, z)
    else:
        fn = lambda v, i, m: Discriminator(cfg).apply(v, i, m, i)
        lowered = jax.jit(fn).lower(variables, img, mask)
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def run(args: argparse.Namespace) -> int:
    from mat_jax.config import load_config, model_config
    from mat_jax.models import MATConfig

    if args.config:
        overrides = [f"model.resolution={args.resolution}"] if args.resolution else []
        cfg = model_config(load_config(args.config, overrides))
    else:
        cfg = MATConfig(resolution=args.resolution or 512)
    print(
        f"MAT model: resolution {cfg.resolution}, num_ws {cfg.num_ws}, stage-1 tokens {cfg.stage1_token_sizes}, "
        f"attention={cfg.attention}, mask_update={cfg.mask_update}, block={cfg.block}"
    )
    for net, title in (("G", "Generator"), ("D", "Discriminator")):
        counts = param_counts(cfg, net, args.detail)
        print(f"\n{title} parameters")
        width = max(len(k) for k in counts)
        for k, n in counts.items():
            print(f"  {k:<{width}}  {n:>12,}")
        if not args.no_flops:
            flops = forward_flops(cfg, net, args.batch)
            print(f"  {'forward FLOPs (XLA, batch ' + str(args.batch) + ')':<{width}}  {flops / 1e9:>10.1f} G")
    return 0
