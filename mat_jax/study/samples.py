"""The sample strip of a comparison: the same records of one evaluation set (images, masks, latents, style maps:
`eval.protocol.EvalSet`, a pure function of set, masks, seed and index) inpainted by every variant's latest G_ema."""

from __future__ import annotations

import dataclasses

import numpy as np

from mat_jax import viz
from mat_jax.api import load_inpainter
from mat_jax.data import pipeline
from mat_jax.eval import protocol
from mat_jax.models.generator import smm_shapes
from mat_jax.study.runs import Run

__all__ = ["eval_set_of", "sample_strip"]


def eval_set_of(run: Run) -> protocol.EvalSet:
    """The evaluation set a run's config describes (its `eval` section over its `data` section), as training's
    evaluation builds it."""
    cfg = protocol.EvalConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in run.config["eval"].items()})
    data = pipeline.from_config(run.config["data"])
    data = dataclasses.replace(data, path=cfg.data_path) if cfg.data_path else data
    return protocol.EvalSet(data, protocol.parse_masks(cfg.masks), cfg.num_images, cfg.seed)


def sample_strip(named_runs: dict[str, Run], eval_set: protocol.EvalSet, count: int = 4, thumb: int = 96):
    """uint8 grid: a row of masked inputs, one row per variant (its first run's latest G_ema), a row of reals;
    one column per record 0..count-1 of `eval_set`."""
    n = min(count, len(eval_set))
    inputs = [eval_set.inputs(i) for i in range(n)]
    images_u8 = np.stack([x["image"] for x in inputs])
    masks = np.stack([x["mask"] for x in inputs])
    images = images_u8.astype(np.float32) / 127.5 - 1.0
    c = np.stack([x["label"] for x in inputs]) if "label" in inputs[0] else None

    def row(arr_u8):
        return [viz.thumbnail(a, thumb) for a in arr_u8]

    rows = [row(viz.to_uint8(np.stack([viz.masked_input(im, m) for im, m in zip(images, masks, strict=True)])))]
    titles = ["masked input"]
    for name, run in named_runs.items():
        inpaint = load_inpainter(run.path)
        cfg = inpaint.cfg
        if cfg.resolution != eval_set.data_cfg.resolution:
            raise ValueError(
                f"{run.path}: resolution {cfg.resolution} differs from the sample set's "
                f"{eval_set.data_cfg.resolution}; compare runs of one resolution"
            )
        lat = [eval_set.latents(i, cfg.z_dim, smm_shapes(cfg, 1)) for i in range(n)]
        z = np.stack([x[0] for x in lat])
        maps = (np.stack([x[1] for x in lat]), np.stack([x[2] for x in lat]))
        final, _ = inpaint(images, masks, z, c=c, smm_maps=maps, noise_mode="const")
        rows.append(row(np.where(masks >= 0.5, images_u8, viz.to_uint8(final))))
        titles.append(name)
    rows.append(row(images_u8))
    titles.append("real")
    return viz.grid(rows, [f"record {i}" for i in range(n)], row_titles=titles)
