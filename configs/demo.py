"""Demo job: the tiny MAT trained on the bundled scikit-image photos; ~10 minutes on 2 CPU cores.

Run: mat-jax train --config configs/demo.py --workdir runs/demo
Watch: runs/demo/samples/grid_*.png (rows: input, mask, stage 1, output, real), runs/demo/metrics.jsonl,
tensorboard --logdir runs/demo/tensorboard; evaluation reports in runs/demo/eval/ (report_*.md). Re-running the
command resumes; Ctrl-C saves and exits.

Deviations from the official recipe, all because the run is tiny and offline: no perceptual loss (VGG19 weights
cannot be downloaded) with an L1 term standing in for it, a 200-image EMA half-life (the official 10 kimg would
leave G_ema at its initialisation in a 4 kimg run), holes limited to 10-50 %, and 64 px.
"""

import pathlib

from mat_jax.config import load_config


def get_config():
    config = load_config(pathlib.Path(__file__).with_name("tiny.py"))  # tiny 64 px model, demo photos, batch 8
    config.data.demo_repeats = 16  # 7 photos x 16 random crops/masks per epoch.
    config.data.hole_range = (0.1, 0.5)  # Official mat_large masks limited to 10-50 % holes (64 px: mostly hole).
    config.train.total_steps = 500  # ~4 kimg; about 0.6-1 s per iteration on 2 cores after ~2 min of compiling.
    config.optimizer.d_reg_interval = 16  # Official lazy R1 interval.
    # loss.pcp_ratio stays 0 (tiny.py): no VGG19 weights offline; pass --config.loss.vgg_weights=... and a ratio.
    config.loss.l1_ratio = 1.0  # Stands in for the perceptual loss (deviation; official: 0).
    config.ema.kimg = 0.2  # G_ema half-life 200 images so the grids (drawn with G_ema) follow the short run.
    config.checkpoint.every_steps = 250  # Two checkpoints plus the final one.
    config.checkpoint.async_save = True  # As in real runs.
    config.logging.log_every_steps = 10  # Scalars every 10 iterations.
    config.logging.grid_every_steps = 100  # Grids at 0, 100, ..., 500.
    config.logging.grid_size = 4  # Four sample rows.
    config.logging.tensorboard = True  # Events in <workdir>/tensorboard.
    config.logging.progress_bar = True  # Progress bar with ETA.
    # L1 / PSNR / SSIM of the 7 photos (fixed masks and latents) at 250 and 500 steps; FID / IDS / KID too with
    # --config.eval.inception_weights=FILE, LPIPS with --config.eval.lpips_weights=FILE.
    config.eval.every_kimg = 2.0
    return config
