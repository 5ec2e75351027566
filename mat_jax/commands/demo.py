"""`mat-jax demo`: inpaint the bundled photos and write a PNG grid (input, masked, mask, stage 1, output).

With `--checkpoint SRC` (any format `mat-jax inpaint` reads, a training run included: `--checkpoint runs/demo`)
the photos are inpainted by that model; without it by a freshly initialised MAT, a smoke test of the whole
forward path on real photos whose fills are noise-like. A class-conditional model (c_dim > 0) needs `--label N`
(every photo is inpainted as class N); an unconditional one refuses it.
"""

from __future__ import annotations

import argparse
import time

from mat_jax.commands import UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="inpaint the bundled photos with a randomly initialised model", description=__doc__
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="weights to use (file, mat-jax directory or training run); default: a random initialisation",
    )
    p.add_argument("--step", type=int, default=None, help="checkpoint step of a training run (default: latest)")
    p.add_argument("--net", choices=("G_ema", "G"), default="G_ema")
    p.add_argument("--config", default=None, help="config file of the random model (default: official architecture)")
    p.add_argument("--resolution", type=int, default=256, help="model resolution when no config is given")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="out/demo_inpaint.png", help="PNG grid to write")
    p.add_argument(
        "--label",
        type=int,
        default=None,
        help="class of every photo, for a class-conditional model (required there, refused otherwise)",
    )
    p.set_defaults(func=run)


def _center_square(image, size):
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(image[y : y + s, x : x + s]).resize((size, size), Image.BICUBIC)
    return np.asarray(crop, np.float32) / 127.5 - 1.0


def run(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mat_jax import inference, viz
    from mat_jax.api import load_inpainter
    from mat_jax.config import load_config, model_config
    from mat_jax.data.demo_data import demo_images
    from mat_jax.data.masks_extra import BOX_KIND, make_mask
    from mat_jax.inference import label_condition
    from mat_jax.models import Generator, MATConfig

    if args.checkpoint is not None:
        if args.config:
            raise UsageError("--config describes a random model; a --checkpoint brings its own")
        inpainter = load_inpainter(args.checkpoint, net=args.net, step=args.step)
        print(f"using {inpainter.source}")
        cfg = inpainter.cfg
    else:
        cfg = model_config(load_config(args.config)) if args.config else MATConfig(resolution=args.resolution)
    c1 = label_condition(args.label, cfg.c_dim, inpainter.source if args.checkpoint is not None else "the model")
    r = cfg.resolution
    names = ("astronaut", "coffee", "chelsea", "rocket")
    photos = demo_images(names)
    images = np.stack([_center_square(photos[n], r) for n in names])  # [4, R, R, 3] in [-1, 1]
    kind = "mat_large" if r in (256, 512) else BOX_KIND
    masks = np.stack([make_mask(kind, r, seed=args.seed, index=i) for i in range(len(names))])  # 1 = known
    if args.checkpoint is None:
        t0 = time.time()
        keys = {"params": jax.random.key(args.seed), "smm": jax.random.key(1), "noise": jax.random.key(2)}
        c_init = (jnp.zeros((1, cfg.c_dim)),) if cfg.c_dim > 0 else ()
        variables = jax.jit(Generator(cfg).init)(
            keys, jnp.asarray(images[:1]), jnp.asarray(masks[:1]), jnp.zeros((1, cfg.z_dim)), *c_init
        )
        print(f"initialised a random {r}x{r} MAT in {time.time() - t0:.1f}s")
        inpainter = inference.Inpainter(cfg, variables)
    print(f"inpainting {len(names)} photos ...")
    t0 = time.time()
    c = None if c1 is None else np.repeat(c1, len(names), axis=0)  # one-hot --label for every photo
    final, stage1 = inpainter(images, masks, c=c, seed=args.seed)
    print(f"forward (compile + run) {time.time() - t0:.1f}s")
    rows = [
        [images[i], viz.masked_input(images[i], masks[i]), viz.mask_rgb(masks[i]), stage1[i], final[i]]
        for i in range(len(names))
    ]
    path = viz.save_png(args.output, viz.grid(rows, ["input", "masked", "mask", "stage 1", "output"]))
    print(f"wrote {path}")
    return 0
