"""Load any MAT checkpoint into a callable inpainter.

    from mat_jax.api import load_inpainter
    inpaint = load_inpainter("CelebA-HQ_512.pkl")          # or .pt/.pth, .safetensors, .npz, a mat-jax dir
    final, stage1 = inpaint(images, masks, seed=0)         # see mat_jax.inference.Inpainter.__call__

Official `.pkl` files are read with a restricted unpickler (no code from the file runs); `.pt` with
`weights_only=True`; safetensors, npz and mat-jax directories need no torch.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp

from mat_jax.inference import Inpainter


def load_inpainter(path: str | os.PathLike, net: str = "G_ema", fmt: str | None = None) -> Inpainter:
    """An `Inpainter` for the generator `net` ('G_ema' by default, or 'G') stored at `path`."""
    import mat_jax.weights.orbax_dir as orbax_dir
    from mat_jax.convert.formats import read_checkpoint

    if net not in ("G_ema", "G"):
        raise ValueError(f"net must be 'G_ema' or 'G' for inpainting, got {net!r}")
    if fmt in (None, "orbax") and os.path.isdir(path) and orbax_dir.is_checkpoint_dir(path):
        cfg, nets = orbax_dir.load_variables(path)
        name = net if net in nets else next((n for n in ("G_ema", "G") if n in nets), None)
        if name is None:
            raise ValueError(f"{path}: holds no generator (nets: {', '.join(nets)})")
        return Inpainter(cfg, jax.tree.map(jnp.asarray, nets[name]))
    ckpt = read_checkpoint(path, nets=(net,), fmt=fmt)
    return Inpainter.from_official(ckpt.nets[net], source=os.fspath(path))
