"""Evaluate a folder of inpainted images against a folder of ground truths, as the official offline scripts pair
them: `*.png` / `*.jpg` files of both folders matched by name (the part before the first dot), grayscale repeated
to 3 channels, each pair the same size. Mismatches are reported all at once, naming the files, instead of the
official `assert name1 == name2` on the first one.

A pair with a file that cannot be decoded follows `bad_data`, the switch of the training data (`data.bad_data`):
"error" (the default here) stops naming the file; "skip" leaves the pair out and records it in `skipped`.

`accumulate_folders(..., shard=(i, n))` evaluates every n-th pair from the i-th, so hosts can split the work and
`EvalAccumulator.merge` the parts (pairs stay paired: the accumulator pairs by row).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import numpy as np

from mat_jax.data.preprocess import BadImageError, decode_image
from mat_jax.data.sources import BAD_DATA_POLICIES
from mat_jax.eval.accumulator import EvalAccumulator
from mat_jax.eval.score import Score

__all__ = ["IMAGE_SUFFIXES", "pair_image_files", "accumulate_folders", "evaluate_folders"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # the official scripts glob *.png and *.jpg


def _by_name(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    out: dict[str, pathlib.Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        name = p.name.split(".")[0]
        if name in out:
            raise ValueError(
                f"{folder}: {out[name].name} and {p.name} have the same name {name!r}; which one to pair is ambiguous"
            )
        out[name] = p
    return out


def pair_image_files(
    fake_dir: str | os.PathLike, real_dir: str | os.PathLike
) -> list[tuple[str, pathlib.Path, pathlib.Path]]:
    """[(name, fake path, real path)] sorted by name; ValueError listing the names present on one side only."""
    fake, real = _by_name(pathlib.Path(fake_dir)), _by_name(pathlib.Path(real_dir))
    only_fake, only_real = sorted(set(fake) - set(real)), sorted(set(real) - set(fake))
    if only_fake or only_real:

        def show(names):
            return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "") or "none"

        raise ValueError(
            f"the folders do not pair one to one: only in {fake_dir}: {show(only_fake)}; "
            f"only in {real_dir}: {show(only_real)}"
        )
    if not fake:
        raise ValueError(f"no {'/'.join(IMAGE_SUFFIXES)} images in {fake_dir} and {real_dir}")
    return [(n, fake[n], real[n]) for n in sorted(fake)]


def accumulate_folders(
    fake_dir: str | os.PathLike,
    real_dir: str | os.PathLike,
    feature_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    batch_size: int = 8,
    shard: tuple[int, int] = (0, 1),
    keep_features: bool = True,
    progress: Callable[[int, int], None] | None = None,
    lpips_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    bad_data: str = "error",
    skipped: dict[str, str] | None = None,
) -> EvalAccumulator:
    """An EvalAccumulator over this shard's pairs; consecutive pairs of one size go through in batches. With
    bad_data="skip", each left-out file is added to `skipped` ({path: reason}) when a dict is given."""
    if bad_data not in BAD_DATA_POLICIES:
        raise ValueError(f"bad_data must be one of {BAD_DATA_POLICIES}, got {bad_data!r}")
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is not in [0, {count})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pairs = pair_image_files(fake_dir, real_dir)[index::count]
    acc = EvalAccumulator(feature_fn, keep_features=keep_features, lpips_fn=lpips_fn)
    real_batch: list[np.ndarray] = []
    fake_batch: list[np.ndarray] = []

    def flush():
        if real_batch:
            acc.update(np.stack(real_batch), np.stack(fake_batch))
            real_batch.clear()
            fake_batch.clear()

    for done, (_name, fake_path, real_path) in enumerate(pairs, 1):
        try:
            fake, real = decode_image(fake_path), decode_image(real_path)  # BadImageError names the file
        except BadImageError as e:
            if bad_data == "error":
                raise
            if skipped is not None:
                skipped[e.where] = e.reason
            if progress is not None:
                progress(done, len(pairs))
            continue
        if fake.shape != real.shape:
            raise ValueError(
                f"{fake_path} is {fake.shape[1]}×{fake.shape[0]} but {real_path} is "
                f"{real.shape[1]}×{real.shape[0]}: a pair must have the same size"
            )
        if real_batch and (real.shape != real_batch[0].shape or len(real_batch) == batch_size):
            flush()
        real_batch.append(real)
        fake_batch.append(fake)
        if progress is not None:
            progress(done, len(pairs))
    flush()
    return acc


def evaluate_folders(
    fake_dir: str | os.PathLike,
    real_dir: str | os.PathLike,
    feature_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    batch_size: int = 8,
    **result_kwargs,
) -> dict[str, Score]:
    """{'psnr', 'ssim', 'l1', 'fid', 'p_ids', 'u_ids', 'kid'} -> Score for every pair of the two folders."""
    return accumulate_folders(fake_dir, real_dir, feature_fn, batch_size).result(**result_kwargs)
