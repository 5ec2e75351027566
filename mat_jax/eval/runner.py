"""Inpaint an `EvalSet` with a generator and measure it: sharded over every device of a mesh (and every host), one
code path for `mat-jax eval` and the evaluation during training.

Per global batch (the set in order, the last batch padded with its last record and the padding dropped): each host
builds its slice of the batch, the jitted forward runs G (psi = 1, constant noise, the set's z and style maps) and
quantises on the devices, the Inception features of both sides are computed on the devices, and the batch is
gathered to every host, which feeds one `EvalAccumulator` in set order, so the numbers do not depend on the device
or host count. Real-image features are cached per (dataset, files, size, resolution, weights) in `cache_dir`.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from mat_jax import inference, viz
from mat_jax.eval.accumulator import EvalAccumulator
from mat_jax.eval.extractor import inception_features
from mat_jax.eval.protocol import EvalSet
from mat_jax.eval.report import METRICS
from mat_jax.eval.score import Score
from mat_jax.models import MATConfig
from mat_jax.models.generator import smm_shapes
from mat_jax.train import sharding

__all__ = ["METRICS", "FEATURE_METRICS", "Ranked", "EvalResult", "Evaluator", "select_metrics"]

FEATURE_METRICS = ("fid", "p_ids", "u_ids", "kid")  # the metrics on Inception features


def select_metrics(requested, have_inception: bool, have_lpips: bool) -> tuple[str, ...]:
    """The metrics to compute: `requested` (empty = every metric whose weights are at hand), checked."""
    unknown = sorted(set(requested) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {METRICS}")
    if not requested:
        available = {"lpips": have_lpips, **dict.fromkeys(FEATURE_METRICS, have_inception)}
        return tuple(m for m in METRICS if available.get(m, True))
    need_inception = sorted(set(requested) & set(FEATURE_METRICS))
    if need_inception and not have_inception:
        raise ValueError(f"metric(s) {need_inception} need Inception weights (inception_weights)")
    if "lpips" in requested and not have_lpips:
        raise ValueError("metric lpips needs LPIPS weights (lpips_weights)")
    return tuple(m for m in METRICS if m in requested)


@dataclasses.dataclass(frozen=True, order=True)
class Ranked:
    """One evaluated record for the best / worst grid (uint8 images)."""

    score: float
    index: int
    real: np.ndarray = dataclasses.field(compare=False)
    mask: np.ndarray = dataclasses.field(compare=False)
    fake: np.ndarray = dataclasses.field(compare=False)


@dataclasses.dataclass
class EvalResult:
    scores: dict[str, Score]  # every name of METRICS; not requested -> None with the reason
    identity: dict  # EvalSet.identity()
    skipped: dict[str, str]  # bad records (key -> reason) that had the next good record stand in
    rank_metric: str  # "lpips" or "l1": what best / worst are ranked by (lower is better)
    best: list[Ranked]
    worst: list[Ranked]
    seconds: float
    cached_real_features: bool
    features: tuple[np.ndarray, np.ndarray] | None  # (real [N, 2048], generated [N, 2048]) when FID etc. were asked


@functools.partial(jax.jit, static_argnames=("cfg",))
def _fill(variables, images_u8, masks, z, map1, map2, c, *, cfg: MATConfig):
    """The set's forward: [B, R, R, 3] uint8 reals -> [B, R, R, 3] uint8 inpaintings (known pixels: the reals)."""
    images = images_u8.astype(jnp.float32) / 127.5 - 1.0
    key = jax.random.key(0)  # unused: the style maps are given and the noise is the trained constant
    final, _ = inference.generate(
        variables, images, masks, z, key, (map1, map2), c, cfg=cfg, noise_mode="const", smm_mode="given"
    )
    return jnp.where(masks >= 0.5, images_u8, viz.to_uint8(final, jnp))


def _gather(x) -> np.ndarray:
    if jax.process_count() == 1:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


class Evaluator:
    """`Evaluator(eval_set, model_cfg, ...)(variables)` -> EvalResult for generator variables {"params", "buffers"}.

    inception: an `InceptionExtractor` (FID / P-IDS / U-IDS / KID), lpips: an `LPIPS` (LPIPS), metrics: names of
    METRICS (empty: all whose network is given). mesh: the devices to shard over (default: all devices).
    `inception_id` names the Inception weights in the real-feature cache key (`protocol.file_id`)."""

    def __init__(
        self,
        eval_set: EvalSet,
        model_cfg: MATConfig,
        *,
        mesh=None,
        inception=None,
        lpips=None,
        metrics=(),
        batch_size: int = 8,
        cache_dir: str | pathlib.Path | None = None,
        inception_id: str = "",
        num_ranked: int = 4,
        progress: bool = True,
    ):
        if eval_set.data_cfg.resolution != model_cfg.resolution:
            raise ValueError(
                f"the evaluation images are {eval_set.data_cfg.resolution} px but the model is {model_cfg.resolution}"
            )
        if (eval_set.num_classes > 0) != (model_cfg.c_dim > 0) or (
            model_cfg.c_dim and eval_set.num_classes != model_cfg.c_dim
        ):
            raise ValueError(
                f"the model has c_dim={model_cfg.c_dim} but the evaluation data gives {eval_set.num_classes} classes "
                "(a class-conditional model needs labelled data with as many classes)"
            )
        self.metrics = select_metrics(tuple(metrics), inception is not None, lpips is not None)
        self.set, self.cfg = eval_set, model_cfg
        self.mesh = mesh if mesh is not None else sharding.make_mesh(1)
        self.repl = sharding.replicated(self.mesh)
        wants_features = any(m in FEATURE_METRICS for m in self.metrics)
        self.inception_params = jax.device_put(inception.params, self.repl) if wants_features else None
        self.lpips = lpips if "lpips" in self.metrics else None
        n_dev = self.mesh.size
        self.batch = -(-batch_size // n_dev) * n_dev  # a multiple of the device count
        if self.batch % jax.process_count():
            raise ValueError(f"batch {self.batch} does not split over {jax.process_count()} processes")
        self.cache_path = None
        if wants_features and cache_dir is not None:
            key = eval_set.real_key(inception_id or "inception")
            self.cache_path = pathlib.Path(cache_dir) / f"real_features_{key}.npy"
        self.num_ranked, self.progress = int(num_ranked), progress

    def _local_batch(self, indices: list[int]) -> dict[str, np.ndarray]:
        p, per = jax.process_index(), self.batch // jax.process_count()
        rows = indices[p * per : (p + 1) * per]
        shapes = smm_shapes(self.cfg, 1)
        items = []
        for i in rows:
            latents = self.set.latents(i, self.cfg.z_dim, shapes)
            items.append({**self.set.inputs(i), **dict(zip(("z", "map1", "map2"), latents, strict=True))})
        return {k: np.stack([it[k] for it in items]) for k in items[0]}

    def __call__(self, variables) -> EvalResult:
        from tqdm import tqdm

        t0 = time.perf_counter()
        variables = jax.device_put(variables, self.repl)
        cached = None
        if self.cache_path is not None and self.cache_path.is_file():
            cached = np.load(self.cache_path)
        real_feats: list[np.ndarray] = []
        acc = EvalAccumulator(keep_features=True, lpips_fn=self.lpips)
        rank = "lpips" if self.lpips is not None else "l1"
        best: list[tuple[float, int, Ranked]] = []  # max-heaps by score (negated) of the lowest scores
        worst: list[tuple[float, int, Ranked]] = []  # min-heap of the highest scores
        n = len(self.set)
        bar = tqdm(
            total=n,
            desc="eval",
            unit="img",
            file=sys.stderr,
            disable=not self.progress or jax.process_index() != 0,
        )
        batch_sh = sharding.batch_sharding(self.mesh)
        with bar:
            for start in range(0, n, self.batch):
                indices = list(range(start, min(start + self.batch, n)))
                valid = len(indices)
                indices += [indices[-1]] * (self.batch - valid)
                local = self._local_batch(indices)
                arrays = {k: jax.make_array_from_process_local_data(batch_sh, v) for k, v in local.items()}
                fake = _fill(
                    variables,
                    arrays["image"],
                    arrays["mask"],
                    arrays["z"],
                    arrays["map1"],
                    arrays["map2"],
                    arrays.get("label"),
                    cfg=self.cfg,
                )
                fr = ff = None
                if self.inception_params is not None:
                    ff = _gather(inception_features(self.inception_params, fake))[:valid]
                    if cached is not None:
                        fr = cached[start : start + valid]
                    else:
                        fr = _gather(inception_features(self.inception_params, arrays["image"]))[:valid]
                        real_feats.append(fr)
                real_u8, fake_u8 = _gather(arrays["image"])[:valid], _gather(fake)[:valid]
                acc.update(real_u8, fake_u8, fr, ff)
                scores = acc.lpips[-1] if rank == "lpips" else acc.pixel["l1"][-1]
                masks = _gather(arrays["mask"])[:valid]
                for j, s in enumerate(scores):
                    item = Ranked(float(s), start + j, real_u8[j], masks[j], fake_u8[j])
                    self._keep(best, (-item.score, -item.index, item))
                    self._keep(worst, (item.score, item.index, item))
                bar.update(valid)
        if real_feats and self.cache_path is not None and jax.process_index() == 0:
            self._save_cache(np.concatenate(real_feats))
        raw = acc.result()
        scores = {
            m: raw[m] if m in self.metrics else Score(None, "not requested (or its weights are not given)")
            for m in METRICS
        }
        return EvalResult(
            scores=scores,
            identity=self.set.identity(),
            skipped=self.set.skipped,
            rank_metric=rank,
            best=sorted(r for *_, r in best)[: n // 2],  # at most half the set each, so the two never overlap
            worst=sorted((r for *_, r in worst), reverse=True)[: n // 2],
            seconds=time.perf_counter() - t0,
            cached_real_features=cached is not None,
            features=(acc.real.features(), acc.fake.features()) if acc.real.num else None,
        )

    def _keep(self, heap: list, entry: tuple) -> None:
        if self.num_ranked <= 0:
            return
        if len(heap) < self.num_ranked:
            heapq.heappush(heap, entry)
        elif entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)

    def _save_cache(self, features: np.ndarray) -> None:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_name(self.cache_path.name + ".tmp.npy")
        np.save(tmp, features.astype(np.float32))
        tmp.replace(self.cache_path)
