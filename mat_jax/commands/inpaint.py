"""`mat-jax inpaint`: fill the holes of images with a MAT checkpoint (any supported format).

Masks are image files, white = known (MAT convention) or white = hole with --mask-convention lama;
they are thresholded at 0.5 (with a warning when a file is not binary). Images of any size and aspect
are reflect-padded (image and mask alike, so hidden pixels never leak in as context) up to the model's
grid (R x R, or multiples of R per side for larger images, as the official code runs them),
inpainted and cropped back; --resize resizes to R x R instead. Known pixels of the output are
the input pixels, bit for bit. With K > 1 samples, each sample gets its own z and style-manipulation
maps (pluralistic inpainting), sample s from seed + s alone, all K in one batched forward (mat_jax.fit, the path
`mat-jax serve` uses too). A class-conditional checkpoint (c_dim > 0) needs --label N: every image is
inpainted as class N (one-hot c); an unconditional checkpoint refuses --label.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from mat_jax.commands import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inpaint",
        help="inpaint images with a checkpoint (official .pkl works directly)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help=".pkl, .pt/.pth, .safetensors, .npz, a mat-jax directory, or a "
        "training run (its workdir, checkpoints/ or a step directory: the latest complete step's G_ema)",
    )
    p.add_argument("--step", type=int, default=None, help="checkpoint step of a training run (default: latest)")
    p.add_argument("--image", required=True, help="an image file or a folder of images")
    p.add_argument("--mask", required=True, help="a mask file (used for every image) or a folder (sorted pairing)")
    p.add_argument("--output", required=True, help="output PNG (single image, one sample) or folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-samples", type=int, default=1, help="pluralistic variants per image (default 1)")
    p.add_argument("--truncation-psi", type=float, default=1.0)
    p.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    p.add_argument(
        "--mask-convention",
        choices=("mat", "lama"),
        default="mat",
        help="mat: white = known (default); lama: white = hole",
    )
    p.add_argument("--resize", action="store_true", help="resize to the model resolution (and back) instead of padding")
    p.add_argument("--net", choices=("G_ema", "G"), default="G_ema")
    p.add_argument(
        "--label",
        type=int,
        default=None,
        help="class of every image, for a class-conditional checkpoint (required there, refused otherwise)",
    )
    p.set_defaults(func=run)


def _list(path: pathlib.Path, what: str) -> list[pathlib.Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{what} folder {path} holds no {'/'.join(IMAGE_SUFFIXES)} files")
        return files
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist")
    return [path]


def _image_size(path: pathlib.Path, what: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read {what} {path}: {e}") from None


def _load_rgb(path: pathlib.Path):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from None


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from mat_jax import viz
    from mat_jax.api import load_inpainter
    from mat_jax.data.mask_io import load_mask
    from mat_jax.fit import inpaint_variants
    from mat_jax.inference import label_condition

    images = _list(pathlib.Path(args.image), "image")
    masks = _list(pathlib.Path(args.mask), "mask")
    if len(masks) not in (1, len(images)):
        raise ValueError(f"{len(images)} images but {len(masks)} masks: give one mask or one per image")
    if args.num_samples < 1:
        raise UsageError(f"--num-samples must be >= 1, got {args.num_samples}")
    pairs = [(p, masks[i if len(masks) > 1 else 0]) for i, p in enumerate(images)]
    for img_path, mask_path in pairs:  # check every pair before loading weights or writing anything
        size_i, size_m = _image_size(img_path, "image"), _image_size(mask_path, "mask")
        if size_i != size_m:
            raise ValueError(
                f"mask {mask_path} is {size_m[0]}x{size_m[1]} but image {img_path} is {size_i[0]}x{size_i[1]}"
            )
    inpainter = load_inpainter(args.checkpoint, net=args.net, step=args.step)
    c = label_condition(args.label, inpainter.cfg.c_dim, inpainter.source)
    print(f"mat-jax inpaint: using {inpainter.source}", file=sys.stderr)
    r, k = inpainter.cfg.resolution, args.num_samples
    out = pathlib.Path(args.output)
    single_file = len(images) == 1 and k == 1 and out.suffix.lower() == ".png"
    if not single_file:
        out.mkdir(parents=True, exist_ok=True)
    rows = []
    many = len(images) > 1
    for img_path, mask_path in tqdm(pairs, desc="inpainting", unit="img", disable=not many):
        image = _load_rgb(img_path)
        mask = load_mask(
            mask_path,
            convention=args.mask_convention,
            binarize=True,
            expected_size=image.shape[:2],
            warn_nonbinary=True,
        )  # [H, W, 1], 1 = known
        fills = inpaint_variants(
            inpainter,
            image,
            mask,
            [args.seed + s for s in range(k)],
            c_1xC=c,
            truncation_psi=args.truncation_psi,
            noise_mode=args.noise_mode,
            resize=args.resize,
        )  # one batched forward for the K samples; sample s is seed + s alone, whatever K
        if fills.noise_mode != args.noise_mode:
            h, w = fills.grid_hw
            print(
                f"mat-jax inpaint: {img_path.name} runs at {w}x{h}: const noise exists only "
                f"at {r}x{r}, using random noise (as the official script)",
                file=sys.stderr,
            )
        outs = fills.images
        for s, u8 in enumerate(outs):
            name = out if single_file else out / (f"{img_path.stem}.png" if k == 1 else f"{img_path.stem}_{s}.png")
            viz.save_png(name, u8)
        if many or k > 1:
            image_pm1 = image.astype(np.float32) / 127.5 - 1.0  # viz draws [-1, 1] images
            shown = [image, viz.to_uint8(viz.masked_input(image_pm1, mask)), viz.to_uint8(viz.mask_rgb(mask)), *outs]
            rows.append([viz.thumbnail(im, 256) for im in shown])
    if rows:
        titles = ["input", "masked", "mask"] + [f"sample {s}" for s in range(k)]
        # in a subfolder, so OUT holds one file per input and `mat-jax eval-folders OUT GT` pairs them by name
        viz.save_png(out / "overview" / "grid.png", viz.grid(rows, titles))
    where = out if single_file else f"{out}/"
    print(f"inpainted {len(images)} image(s) x {k} sample(s) -> {where}")
    return 0
