"""`mat-jax masks`: write a fixed, reproducible mask set so every evaluation uses the same masks.

    mat-jax masks --kind mat_large --resolution 512 --count 2000 --seed 0 --out masks/large_512

Writes `{out}/{i:06d}.png` (R x R, 8-bit, **white = known, black = hole**), `{out}/masks.csv`
(file, hole ratio, and for the MAT kinds the legacy seed with which the official generator,
`np.random.seed(s); RandomMask(R)`, draws the same mask), `{out}/histogram.png`, and prints the decile
histogram of hole ratios. Mask i depends only on (kind, resolution, seed, i), so sets can be extended.
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import sys

from mat_jax.commands import UsageError
from mat_jax.data import mask_io, mask_report, masks_extra


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "masks",
        help="write a fixed set of inpainting masks (white = known) + hole-ratio histogram",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--kind", default="mat_large", choices=masks_extra.ALL_KINDS, help="mask generator")
    p.add_argument("--resolution", type=int, default=512, help="mask side in pixels")
    p.add_argument("--count", type=int, default=1000, help="number of masks")
    p.add_argument("--seed", type=int, default=0, help="set seed (mask i depends on seed and i only)")
    p.add_argument("--out", required=True, help="output folder (created; must not contain masks already)")
    p.add_argument(
        "--hole-range",
        type=float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("LO", "HI"),
        help="MAT kinds: keep masks whose hole ratio is in the open interval (LO, HI)",
    )
    p.add_argument("--start", type=int, default=0, help="first mask index (to extend an existing set)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a folder with PNG files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.count < 1:
        raise UsageError(f"--count must be >= 1, got {args.count}")
    if args.resolution < 8:
        raise UsageError(f"--resolution must be >= 8, got {args.resolution}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("*.png")) and not (args.overwrite or args.start > 0):
        raise UsageError(f"--out {out} already contains PNG files; pass --overwrite or choose another folder")
    hole_range = tuple(args.hole_range)
    is_mat = args.kind in masks_extra.MAT_KINDS
    ratios = []
    rows = []
    indices = range(args.start, args.start + args.count)
    for i in tqdm(indices, desc=f"masks {args.kind}@{args.resolution}", disable=args.no_progress, file=sys.stderr):
        m = masks_extra.make_mask(args.kind, args.resolution, args.seed, i, hole_range=hole_range)  # [R, R, 1]
        name = f"{i:06d}.png"
        mask_io.save_mask(out / name, m)
        r = mask_io.hole_ratio(m)
        ratios.append(r)
        rows.append([name, f"{r:.6f}", masks_extra.record_seed(args.seed, i) if is_mat else ""])
    csv_path = out / "masks.csv"
    new_csv = not csv_path.exists() or args.start == 0
    with open(csv_path, "w" if new_csv else "a", newline="") as f:
        w = csv.writer(f)
        if new_csv:
            w.writerow(["file", "hole_ratio", "official_legacy_seed"])
        w.writerows(rows)
    title = f"{args.kind} @ {args.resolution}, seed {args.seed}, masks {args.start}..{args.start + args.count - 1}"
    print(mask_report.histogram_table(ratios, title="hole ratio"))
    mask_report.histogram_image(ratios, title).save(out / "histogram.png")
    print(f"wrote {args.count} masks to {os.fspath(out)} (white = known); histogram: {out / 'histogram.png'}")
    return 0
