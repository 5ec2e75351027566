"""Demo ablation study: the demo config (tiny 64 px MAT on the bundled photos) and three variants, one seed each.

Run:     mat-jax sweep configs/ablations/demo_sweep.py --out runs/demo_study
Compare: mat-jax compare runs/demo_study --out docs/demo_study

A short run per point (150 iterations, ~1.2 kimg, evaluated at 75 and 150) so the four runs finish in well under an
hour on 2 CPU cores. L1 / PSNR / SSIM of the 7 photos under fixed masks, latents and style maps; add
`--set eval.inception_weights=FILE` for FID / P-IDS / U-IDS / KID. The numbers of such a tiny, short run say nothing
about the paper's claims; this is the recipe at paper scale (README, "Ablation studies"):

    base: configs/places512.py, variants: configs/ablations/*.py, seeds: [0, 1, 2],
    overrides: data.path=/data/places365/train, loss.vgg_weights=..., eval.every_kimg=500,
    eval.data_path=/data/places365/val, eval.masks=/data/mat_masks/large_512, eval.inception_weights=...
"""


def get_sweep():
    return dict(
        base="../demo.py",
        variants={
            "baseline": [],  # configs/demo.py as it is: MCA, dynamic mask update, SMM on
            "window_attention": ["model.attention=window"],  # attention_window.py's change
            "static_mask": ["model.mask_update=none"],  # mask_static.py's change
            "no_smm": ["model.style_manipulation=False"],  # no_style_manipulation.py's change
        },
        seeds=[0],
        overrides=[
            "train.total_steps=150",  # ~1.2 kimg at batch 8
            "eval.every_kimg=0.6",  # evaluate at 75 and 150 iterations
            "checkpoint.every_steps=75",
            "logging.grid_every_steps=75",
            "logging.progress_bar=False",
        ],
    )
