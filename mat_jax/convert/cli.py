"""`mat-jax convert SRC DST`: convert MAT checkpoints between file formats, keeping official names.

Formats come from the extensions (`.pkl` import only, `.pt`/`.pth`, `.safetensors`, `.npz`, `.onnx` export; a
mat-jax checkpoint directory otherwise) or from `--from` / `--to`. Which net and which resolution the
source holds are inferred from its keys and checked entry by entry before anything is written.
"""

from __future__ import annotations

import argparse
import sys

from mat_jax.convert.errors import ConversionError
from mat_jax.convert.formats import DTYPES, format_names, read_checkpoint, write_checkpoint

__all__ = ["register", "run"]

_NET_CHOICES = ("G_ema", "G", "D")


def _nets(value: str) -> tuple[str, ...]:
    nets = tuple(n.strip() for n in value.split(",") if n.strip())
    if value == "all":
        return ()
    bad = [n for n in nets if n not in _NET_CHOICES]
    if not nets or bad:
        raise argparse.ArgumentTypeError(
            f"--net takes G_ema, G, D, a comma list of them, or 'all'; got {value!r}"
        )
    return nets


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert",
        help="convert checkpoints between .pkl/.pt/.safetensors/.npz (official names)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="source checkpoint (official .pkl is read with a restricted unpickler)")
    p.add_argument("dst", help="destination file; written atomically")
    p.add_argument(
        "--net",
        type=_nets,
        default=("G_ema",),
        help="net(s) to convert: G_ema (default), G, D, a comma list (written with G./D./G_ema. key "
        "prefixes), or 'all'. A file holding one un-prefixed generator satisfies G and G_ema.",
    )
    p.add_argument("--dtype", choices=DTYPES, default=None, help="cast floating entries on export")
    p.add_argument(
        "--resolution", type=int, choices=(128, 256, 512), default=None, help="require this resolution"
    )
    p.add_argument(
        "--from", dest="src_format", default=None, help=f"source format ({', '.join(format_names())})"
    )
    p.add_argument("--to", dest="dst_format", default=None, help="destination format (default: from DST)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import mat_jax.weights.orbax_dir  # noqa: F401  (registers the mat-jax checkpoint-directory format)

    try:
        ckpt = read_checkpoint(
            args.src, nets=args.net or None, resolution=args.resolution, fmt=args.src_format
        )
        write_checkpoint(args.dst, ckpt.nets, fmt=args.dst_format, dtype=args.dtype)
    except ConversionError as e:
        print(f"mat-jax convert: error: {e}", file=sys.stderr)
        return 1
    n = sum(len(s) for s in ckpt.nets.values())
    res = ckpt.resolution
    print(f"{args.src} -> {args.dst}: {', '.join(ckpt.nets)} at {res}x{res}, {n} entries")
    return 0
