"""`mat-jax compare RUN_DIR... | SWEEP_DIR [--out DIR] [--baseline NAME]`: one report over ablation runs.

  mat-jax compare runs/demo_study --out docs/demo_study
  mat-jax compare runs/a runs/b__seed0 runs/b__seed1 --out cmp --baseline a

Writes DIR/report.md (variant, what differs from the baseline, G params, step time, peak memory, final metrics mean ±
std over seeds, Δ vs baseline), DIR/summary.json, one PNG per metric against kimg and DIR/samples.png (the same
evaluation records inpainted by every variant). Runs evaluated under different protocols are refused.
"""

from __future__ import annotations

import argparse
import pathlib

from mat_jax.commands import UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare ablation runs (a sweep directory or run directories): report.md, plots, samples",
        description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", help="run directories, or a sweep directory (mat-jax sweep --out)")
    p.add_argument("--out", help="report directory (default: the sweep directory, when one is given)")
    p.add_argument("--baseline", help="variant the others are compared with (default: 'baseline', else the first)")
    p.add_argument("--samples", type=int, default=4, help="evaluation records in the sample strip (0: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mat_jax.study import compare

    out = args.out
    if out is None:
        if len(args.paths) != 1 or (pathlib.Path(args.paths[0]) / "config.json").is_file():
            raise UsageError("--out is required unless a single sweep directory is given")
        out = args.paths[0]
    if args.samples < 0:
        raise UsageError(f"--samples must be >= 0, got {args.samples}")
    summary = compare.compare(args.paths, out, args.baseline, args.samples)
    print("\n".join(compare.table(summary)))
    print(f"report: {pathlib.Path(out) / 'report.md'}")
    return 0
