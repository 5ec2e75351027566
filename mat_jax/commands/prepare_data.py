"""`mat-jax prepare-data`: turn image folders into a TFDS array_record dataset once (no TensorFlow needed).

    mat-jax prepare-data --name places512 --split train=/data/places/train_large \\
        --split validation=/data/places/val_large --data-dir ~/tensorflow_datasets

Then train with `data.source="tfds"`, `data.path="mat_image_folder/places512"`, `data.tfds_data_dir=...`.
Bad images (corrupt, truncated, zero-byte, not an image) are skipped and listed (`--bad-data error` stops at the
first one instead).
"""

from __future__ import annotations

import argparse

from mat_jax.commands import UsageError


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "prepare-data",
        help="convert image folders to a TFDS array_record dataset (once, no TensorFlow)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--name", required=True, help="dataset name, e.g. places512 (-> mat_image_folder/NAME)")
    p.add_argument(
        "--split",
        action="append",
        required=True,
        metavar="SPLIT=DIR",
        help="a split and its image folder (recursive); repeat for several splits",
    )
    p.add_argument("--data-dir", required=True, help="TFDS data_dir to write to")
    p.add_argument("--bad-data", choices=("skip", "error"), default="skip")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from mat_jax.data import tfds_builder

    split_dirs = {}
    for item in args.split:
        split, sep, folder = item.partition("=")
        if not sep or not split or not folder:
            raise UsageError(f"--split expects SPLIT=DIR, got {item!r}")
        if split in split_dirs:
            raise UsageError(f"--split {split} given twice")
        split_dirs[split] = folder
    name, skipped = tfds_builder.prepare_image_folder(args.name, split_dirs, args.data_dir, bad_data=args.bad_data)
    for path, reason in sorted(skipped.items()):
        print(f"skipped {path}: {reason}")
    print(
        f"prepared {name} in {args.data_dir} ({len(skipped)} bad images skipped); "
        f"read it with data.source='tfds', data.path='{name}', data.tfds_data_dir='{args.data_dir}'"
    )
    return 0
