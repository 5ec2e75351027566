"""Load any MAT checkpoint into a callable inpainter.

    from mat_jax.api import load_inpainter
    inpaint = load_inpainter("CelebA-HQ_512.pkl")          # or .pt/.pth, .safetensors, .npz, a mat-jax dir
    inpaint = load_inpainter("runs/demo")                  # a training run: its latest complete step's G_ema
    inpaint = load_inpainter("runs/demo", step=250, net="G")
    final, stage1 = inpaint(images, masks, seed=0)         # see mat_jax.inference.Inpainter.__call__

Official `.pkl` files are read with a restricted unpickler (no code from the file runs); `.pt` with
`weights_only=True`; safetensors, npz, mat-jax directories and training runs need no torch. Sources and net
selection are those of `mat_jax.train.nets_io.load_nets`.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp

from mat_jax.inference import Inpainter


def load_inpainter(
    path: str | os.PathLike, net: str = "G_ema", fmt: str | None = None, step: int | None = None
) -> Inpainter:
    """An `Inpainter` for the generator `net` ('G_ema' by default, or 'G') stored at `path` (`step`: of a run)."""
    from mat_jax.train.nets_io import load_generator

    loaded = load_generator(path, net, step=step, fmt=fmt)
    return Inpainter(loaded.cfg, jax.tree.map(jnp.asarray, loaded.nets[net]), source=loaded.describe())
