"""Fine-tune the released Places 512 MAT on your own images: a starting point, not a tuned recipe.

Run (the .pkl is the official release file, read without running code from it; nothing is downloaded):
  mat-jax train --config configs/finetune512.py --workdir runs/ft512 \
      --config.data.path=/data/my_images --config.init.checkpoint=/weights/Places_512_FullData.pkl \
      --config.loss.vgg_weights=/weights/vgg19-dcbb9e9d.pth

G, D and G_ema (with w_avg) are loaded before step 0 of the fresh run; the Adam states start fresh; re-running the
command resumes from the run's own checkpoints. Start D from scratch with --config.init.nets="('G', 'G_ema')".
CelebA-HQ_512.pkl works the same way. What differs from places512.py, and why:
"""

from mat_jax.config import base_config


def get_config():
    config = base_config()
    config.init.checkpoint = "Places_512_FullData.pkl"  # The released 512 model (G, D, G_ema); pass its real path.
    config.optimizer.g_lr = 1e-4  # 10x below the from-scratch rate: adapt the pretrained nets, do not retrain them.
    config.optimizer.d_lr = 1e-4  # Same for D, so neither net outruns the other early on.
    config.train.total_kimg = 2000  # 2 M images: a fine-tune, not the 50 M images of the full run.
    # ema.kimg stays the official 10; G_ema starts from the released G_ema.
    config.checkpoint.every_steps = 1000  # Save more often on a short run.
    config.logging.grid_every_steps = 500  # Look at samples early: that is where a fine-tune goes right or wrong.
    return config
