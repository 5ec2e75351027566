"""`mat-jax convert SRC DST`: convert MAT checkpoints between file formats, keeping official names.

Formats come from the extensions (`.pkl` import only, `.pt`/`.pth`, `.safetensors`, `.npz`, `.onnx` export; a
mat-jax checkpoint directory otherwise) or from `--from` / `--to`. Which net and which resolution the
source holds are inferred from its keys and checked entry by entry before anything is written.

A training run (`mat-jax convert runs/x g.pt`, `--step N`) or a mat-jax directory brings its own architecture:
official architectures become exactly an official state_dict; any other (e.g. the tiny demo model) is written in
official naming with `DST.model_config.json` beside it, which `mat_jax.torch_twin` and every mat-jax reader use.
"""

from __future__ import annotations

import argparse
import os

from mat_jax.convert.errors import ConversionError
from mat_jax.convert.formats import (
    DTYPES,
    format_names,
    model_config_sidecar,
    read_checkpoint,
    write_checkpoint,
)

__all__ = ["register", "run"]

_NET_CHOICES = ("G_ema", "G", "D")


def _nets(value: str) -> tuple[str, ...]:
    nets = tuple(n.strip() for n in value.split(",") if n.strip())
    if value == "all":
        return ()
    bad = [n for n in nets if n not in _NET_CHOICES]
    if not nets or bad:
        raise argparse.ArgumentTypeError(f"--net takes G_ema, G, D, a comma list of them, or 'all'; got {value!r}")
    return nets


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert",
        help="convert checkpoints between .pkl/.pt/.safetensors/.npz (official names)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "src",
        help="source checkpoint: a file (official .pkl is read with a restricted unpickler), a "
        "mat-jax directory, or a training run (workdir, its checkpoints/ or a step directory)",
    )
    p.add_argument("dst", help="destination file; written atomically")
    p.add_argument(
        "--net",
        type=_nets,
        default=("G_ema",),
        help="net(s) to convert: G_ema (default), G, D, a comma list (written with G./D./G_ema. key "
        "prefixes), or 'all'. A file holding one un-prefixed generator satisfies G and G_ema.",
    )
    p.add_argument("--dtype", choices=DTYPES, default=None, help="cast floating entries on export")
    p.add_argument("--resolution", type=int, choices=(128, 256, 512), default=None, help="require this resolution")
    p.add_argument("--from", dest="src_format", default=None, help=f"source format ({', '.join(format_names())})")
    p.add_argument("--to", dest="dst_format", default=None, help="destination format (default: from DST)")
    p.add_argument(
        "--step",
        type=int,
        default=None,
        help="for a training run as SRC: the checkpoint step (default: the latest complete one)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from mat_jax.train import nets_io  # training runs and non-official architectures load through Flax variables

    if args.step is not None or nets_io.carries_model_config(args.src, args.src_format):
        # A training run or a directory/file with its own architecture: through the Flax variables.
        nets = args.net or nets_io.available_nets(args.src, args.src_format)
        loaded = nets_io.load_nets(args.src, nets, step=args.step, fmt=args.src_format)
        res = loaded.cfg.resolution
        if args.resolution is not None and res != args.resolution:
            raise ConversionError(
                f"{args.src}: holds a resolution-{res} model, but --resolution {args.resolution} was requested"
            )
        nets_io.save_nets(args.dst, loaded.cfg, loaded.nets, fmt=args.dst_format, dtype=args.dtype)
        what = loaded.describe()
        n = None
    else:
        ckpt = read_checkpoint(args.src, nets=args.net or None, resolution=args.resolution, fmt=args.src_format)
        write_checkpoint(args.dst, ckpt.nets, fmt=args.dst_format, dtype=args.dtype)
        res, what = ckpt.resolution, f"{', '.join(ckpt.nets)} at {ckpt.resolution}x{ckpt.resolution}"
        n = sum(len(s) for s in ckpt.nets.values())
    print(f"{args.src} -> {args.dst}: {what}" + (f", {n} entries" if n is not None else ""))
    sidecar = model_config_sidecar(args.dst)
    if os.path.isfile(sidecar):
        print(
            f"  not the official architecture: its model config is in {sidecar} "
            "(mat_jax.torch_twin.Generator.from_config builds the matching PyTorch network)"
        )
    return 0
