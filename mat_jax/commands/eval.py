"""`mat-jax eval --checkpoint SRC --data DATA --masks MASKS --num N --out report.json`: inpaint a fixed set and
measure it.

Any checkpoint `mat-jax inpaint` reads (an official .pkl, safetensors, a training run's latest G_ema ...). The set:
the first N images of DATA (a folder, tfds:NAME[:SPLIT], array_record:PATH or demo), center-cropped to the model's
resolution; masks from a folder (sorted pairing, e.g. the authors' fixed masks) or kind:NAME[:SEED]; latents and
style maps from --seed. Rerunning gives the same numbers, on any number of devices or hosts. Writes the JSON report,
report.md beside it and a PNG of the best and worst inpaintings (by LPIPS, or L1 without LPIPS weights). Real-image
Inception features are cached (keyed by dataset files, N, resolution and weights) under --cache-dir.
"""

from __future__ import annotations

import argparse
import sys

from mat_jax.commands import UsageError, metric_nets


def register(subparsers) -> None:
    from mat_jax.data.pipeline import DataConfig
    from mat_jax.eval.protocol import EvalConfig

    p = subparsers.add_parser(
        "eval",
        help="inpaint a fixed set with a checkpoint and measure FID, P-IDS/U-IDS, KID, PSNR/SSIM/L1, LPIPS",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="any checkpoint `mat-jax inpaint` reads (a run: its G_ema)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step of a training run (default: latest)")
    p.add_argument("--net", choices=("G_ema", "G"), default="G_ema")
    p.add_argument("--data", required=True, help="a folder of images, tfds:NAME[:SPLIT], array_record:PATH or demo")
    p.add_argument(
        "--masks",
        default=None,
        help="a folder of mask files (white = known, paired in sorted order) or kind:NAME[:SEED] (default: a "
        f"training run's eval.masks, else {EvalConfig.masks})",
    )
    p.add_argument(
        "--hole-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help=f"generated masks' holes (default: a training run's data.hole_range, else {DataConfig.hole_range})",
    )
    p.add_argument("--num", type=int, default=0, help="images to evaluate (default 0: the whole set)")
    p.add_argument("--out", required=True, help="report JSON; report.md and *_best_worst.png go beside it")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seed of the latents and style-manipulation maps (default: a training run's eval.seed, else "
        f"{EvalConfig.seed})",
    )
    p.add_argument(
        "--batch-size", type=int, default=EvalConfig.batch_size, help="images per forward (rounded up to the devices)"
    )
    p.add_argument("--labels", choices=("none", "dataset_json", "subfolders", "tfds"), default="none")
    p.add_argument("--bad-data", choices=("error", "skip"), default="error", help="as data.bad_data in training")
    p.add_argument("--metrics", default="", help="comma-separated subset (default: all whose weights are given)")
    metric_nets.add_arguments(p)
    p.add_argument("--cache-dir", default=None, help="real-feature cache (default $MAT_JAX_CACHE/eval)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the real-feature cache")
    p.add_argument("--grid", type=int, default=4, help="best and worst examples in the PNG (default 4 each)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _protocol_defaults(args: argparse.Namespace) -> None:
    """Unset --masks / --hole-range / --seed: those of the training run being evaluated (its config.json), so
    `mat-jax eval --checkpoint WORKDIR --data ...` measures what the run's own evaluation measured; else the
    EvalConfig / DataConfig defaults. Says where each came from."""
    from mat_jax.data.pipeline import DataConfig
    from mat_jax.eval.protocol import EvalConfig
    from mat_jax.train import run_dir

    config = run_dir.training_config(args.checkpoint) if run_dir.is_run(args.checkpoint) else None
    run_eval, run_data = (config or {}).get("eval") or {}, (config or {}).get("data") or {}
    taken = []
    for flag, attr, section, key, default in (
        ("--masks", "masks", run_eval, "masks", EvalConfig.masks),
        ("--hole-range", "hole_range", run_data, "hole_range", DataConfig.hole_range),
        ("--seed", "seed", run_eval, "seed", EvalConfig.seed),
    ):
        if getattr(args, attr) is not None:
            continue
        if key in section:
            setattr(args, attr, section[key])
            taken.append(f"{flag} {section[key]}")
        else:
            setattr(args, attr, default)
    if taken:
        print(f"mat-jax eval: from the run's config.json: {', '.join(taken)}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import pathlib

    from mat_jax import viz
    from mat_jax.api import load_inpainter
    from mat_jax.data.sources import default_cache_dir
    from mat_jax.eval import protocol, report
    from mat_jax.eval.runner import Evaluator

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.num < 0:
        raise UsageError(f"--num must be >= 0 (0 = the whole set), got {args.num}")
    _protocol_defaults(args)
    masks = protocol.parse_masks(args.masks)
    fields = dict(hole_range=tuple(args.hole_range), bad_data=args.bad_data, labels=args.labels)
    data_cfg = protocol.parse_data(args.data, 512, **fields)
    protocol.EvalSet(data_cfg, masks, args.num, args.seed)  # N larger than the set fails here, before any work
    inpainter = load_inpainter(args.checkpoint, net=args.net, step=args.step)
    print(f"mat-jax eval: using {inpainter.source}", file=sys.stderr)
    data_cfg = dataclasses.replace(data_cfg, resolution=inpainter.cfg.resolution)
    eval_set = protocol.EvalSet(data_cfg, masks, args.num, args.seed)
    inception, lpips = metric_nets.load(args)
    cache_dir = None if args.no_cache else pathlib.Path(args.cache_dir or default_cache_dir() / "eval")
    evaluator = Evaluator(
        eval_set,
        inpainter.cfg,
        inception=inception,
        lpips=lpips,
        metrics=tuple(m for m in args.metrics.split(",") if m),
        batch_size=args.batch_size,
        cache_dir=cache_dir,
        inception_id=protocol.file_id(args.inception_weights) if args.inception_weights else "",
        num_ranked=args.grid,
        progress=not args.no_progress,
    )
    result = evaluator(inpainter.variables)
    rep = report.from_result(result, checkpoint=inpainter.source, missing=metric_nets.missing_notes(args))
    md_path, png_path = report.companion_paths(args.out)
    report.write_json(args.out, rep)
    if result.best:
        viz.save_png(png_path, report.ranked_grid(result.best, result.worst, result.rank_metric))
    md_path.write_text(
        report.markdown(rep, f"Evaluation of {inpainter.source}", png_path.name if result.best else None)
    )
    print(report.table(rep))
    for key, reason in sorted(result.skipped.items()):
        print(f"mat-jax eval: skipped unreadable {key} ({reason}); the next good record stood in", file=sys.stderr)
    print(
        f"{len(eval_set)} images in {result.seconds:.1f} s; wrote {args.out}, {md_path}"
        + (f", {png_path}" if result.best else "")
    )
    return 0
