"""Input-pipeline throughput: masks/s of the generators and images/s of the full grain pipeline
(JPEG decode + crop + flip + mask + batch) at 256 and 512 with 0, 1 and 2 worker processes.

    python benchmarks/bench_data.py                      # all settings, ~1 min on 2 cores
    python benchmarks/bench_data.py --train-step-s 0.9   # also print the data time / train-step time ratio

Images: the scikit-image demo photos re-encoded as JPEG (quality 90) with the short side at the resolution,
like Places365 "large" images, written to a temporary folder. Worker start-up is excluded (first batch is a
warm-up). The pipeline must stay well below the train-step time: the ratio printed is the time to produce one
global batch in this process divided by the step time (< 1 means the data is not the bottleneck; with
prefetching the overlap hides it entirely).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def _write_images(folder: str, resolution: int, copies: int) -> None:
    from PIL import Image

    from mat_jax.data import demo_data

    for name, img in demo_data.demo_images().items():
        h, w = img.shape[:2]
        s = resolution / min(h, w)
        im = Image.fromarray(img).resize((max(resolution, round(w * s)), max(resolution, round(h * s))))
        for c in range(copies):
            im.save(f"{folder}/{name}_{c}.jpg", quality=90)


def bench_masks(kinds, resolutions, count: int) -> None:
    from mat_jax.data import masks_extra

    print(f"\n{'mask kind':<14}{'res':>5}{'masks/s':>10}{'ms/mask':>9}")
    for res in resolutions:
        for kind in kinds:
            masks_extra.make_mask(kind, res, 0, 0)
            t = time.perf_counter()
            for i in range(count):
                masks_extra.make_mask(kind, res, 0, i)
            dt = time.perf_counter() - t
            print(f"{kind:<14}{res:>5}{count / dt:>10.0f}{1e3 * dt / count:>9.2f}")


def bench_pipeline(resolutions, workers, batch_size: int, batches: int, train_step_s: float | None) -> None:
    from mat_jax.data import pipeline

    header = f"\n{'res':>5}{'workers':>9}{'batch':>7}{'images/s':>10}{'s/batch':>9}"
    print(header + ("  data/step" if train_step_s else ""))
    for res in resolutions:
        with tempfile.TemporaryDirectory() as d:
            _write_images(d, res, copies=4)
            cfg = pipeline.DataConfig(source="folder", path=d, resolution=res)
            for nw in workers:
                it, _ = pipeline.make_train_iterator(
                    cfg, seed=0, global_batch_size=batch_size, process_index=0, process_count=1, num_workers=nw
                )
                next(it)  # warm-up: worker start-up, first decode
                t = time.perf_counter()
                for _ in range(batches):
                    b = next(it)
                dt = time.perf_counter() - t
                assert b["image"].shape == (batch_size, res, res, 3)
                per_batch = dt / batches
                line = f"{res:>5}{nw:>9}{batch_size:>7}{batch_size * batches / dt:>10.1f}{per_batch:>9.3f}"
                if train_step_s:
                    line += f"  {per_batch / train_step_s:>9.2f}"
                print(line, flush=True)
                del it


def main() -> None:
    from absl import flags

    flags.FLAGS.mark_as_parsed()  # grain workers read absl flags
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--batches", type=int, default=10, help="timed batches per setting (after 1 warm-up)")
    p.add_argument("--mask-count", type=int, default=300)
    p.add_argument("--mask-kinds", nargs="+", default=["mat_large", "mat_small", "lama_thick", "lama_thin"])
    p.add_argument("--train-step-s", type=float, default=None, help="measured train-step time, for the ratio")
    args = p.parse_args()
    np.set_printoptions(precision=3)
    bench_masks(args.mask_kinds, args.resolutions, args.mask_count)
    bench_pipeline(args.resolutions, args.workers, args.batch_size, args.batches, args.train_step_s)


if __name__ == "__main__":  # grain spawns workers that re-import this file
    main()
