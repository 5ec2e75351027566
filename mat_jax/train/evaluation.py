"""Evaluation during training (`config.eval`): the code of `mat-jax eval` (`mat_jax.eval.runner.Evaluator`) on a
fixed validation set with fixed masks, latents and style maps, run on the training mesh with the current G_ema.

Every `eval.every_kimg` (and at the end of the run) the scalars `eval/<metric>` go to metrics.jsonl and TensorBoard
and the report to `<workdir>/eval/report_<step>.json` (+ .md and the best / worst PNG), the same files `mat-jax
eval` writes; `mat-jax eval --checkpoint WORKDIR --step S` with the same set and masks gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import pathlib

from mat_jax import viz
from mat_jax.data import pipeline
from mat_jax.eval import protocol, report
from mat_jax.eval.runner import Evaluator
from mat_jax.train import logs

log = logs.log


def eval_config(config) -> protocol.EvalConfig:
    """config.eval as an EvalConfig (unknown keys fail naming them)."""
    items = dict(config.eval.items()) if "eval" in config else {}
    known = {f.name for f in dataclasses.fields(protocol.EvalConfig)}
    unknown = sorted(set(items) - known)
    if unknown:
        raise ValueError(f"unknown eval config keys {unknown}; known keys: {sorted(known)}")
    return protocol.EvalConfig(**items)


class TrainingEval:
    """Built once before the first step (weights read, set checked); `due(step)` and `__call__(step, ema)`."""

    def __init__(self, cfg: protocol.EvalConfig, data_cfg: pipeline.DataConfig, recipe, mesh, workdir: pathlib.Path):
        self.cfg, self.workdir = cfg, workdir
        data = dataclasses.replace(data_cfg, path=cfg.data_path) if cfg.data_path else data_cfg
        eval_set = protocol.EvalSet(data, protocol.parse_masks(cfg.masks), cfg.num_images, cfg.seed)
        inception = lpips = None
        if cfg.inception_weights:
            from mat_jax.eval.extractor import InceptionExtractor

            inception = InceptionExtractor(cfg.inception_weights)
        if cfg.lpips_files():
            from mat_jax.eval.lpips import LPIPS

            lpips = LPIPS(*cfg.lpips_files())
        self.evaluator = Evaluator(
            eval_set,
            recipe.model,
            mesh=mesh,
            inception=inception,
            lpips=lpips,
            metrics=cfg.metrics,
            batch_size=cfg.batch_size,
            cache_dir=cfg.cache_dir or workdir / "eval" / "cache",
            inception_id=protocol.file_id(cfg.inception_weights) if cfg.inception_weights else "",
            progress=False,
        )
        self.missing = {}  # why a metric is null
        if not cfg.inception_weights:
            self.missing.update(dict.fromkeys(("fid", "p_ids", "u_ids", "kid"), "eval.inception_weights is not set"))
        if not cfg.lpips_files():
            self.missing["lpips"] = "eval.lpips_weights is not set"
        self.every_steps = max(1, round(cfg.every_kimg * 1000 / recipe.global_batch))
        log.info(
            "evaluation every %d iterations (%.3g kimg) on %d images (%s, masks %s): %s",
            self.every_steps,
            cfg.every_kimg,
            len(eval_set),
            eval_set.source.raw_source.name,
            eval_set.masks.describe(),
            ", ".join(self.evaluator.metrics),
        )

    def due(self, step: int) -> bool:
        return step % self.every_steps == 0

    def __call__(self, step: int, ema, writer: logs.Writer) -> dict:
        """Evaluate G_ema at `step`: scalars to the writer, the report to <workdir>/eval/. Returns the report."""
        result = self.evaluator(ema)
        rep = report.from_result(result, checkpoint=f"G_ema of {self.workdir} (step {step})", missing=self.missing)
        values = {f"eval/{k}": rep[k] for k in report.METRICS if rep[k] is not None}
        writer.scalars(step, {**values, "eval/seconds": result.seconds})
        if writer.is_main:
            path = self.workdir / "eval" / f"report_{step:08d}.json"
            md_path, png_path = report.companion_paths(path)
            report.write_json(path, rep)
            if result.best:
                viz.save_png(png_path, report.ranked_grid(result.best, result.worst, result.rank_metric))
            md_path.write_text(
                report.markdown(rep, f"Evaluation at step {step}", png_path.name if result.best else None)
            )
            log.info(
                "eval at step %d (%.1f s): %s -> %s",
                step,
                result.seconds,
                ", ".join(f"{k} {v:.4g}" for k, v in values.items()),
                path,
            )
        return rep


def build(config, data_cfg: pipeline.DataConfig, recipe, mesh, workdir: pathlib.Path) -> TrainingEval | None:
    """The run's evaluation, or None when eval.every_kimg is 0."""
    cfg = eval_config(config)
    if cfg.every_kimg <= 0:
        return None
    return TrainingEval(cfg, data_cfg, recipe, mesh, workdir)
