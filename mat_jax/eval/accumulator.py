"""One streaming accumulator for every offline metric: update batch by batch, merge across hosts, `result()` once.

What it keeps: per-image PSNR / SSIM / L1 (the official averages are plain means over images), per-pair LPIPS when
an LPIPS network is given (`lpips_fn`, e.g. `mat_jax.eval.lpips.LPIPS`; also a plain mean) and, for the feature
metrics, real and generated `FeatureStats` updated in lockstep, so row i of both is pair i (P-IDS pairs them).
`state()` is a flat dict of numpy arrays: gather it from every host (or save it per shard) and `merge` the
accumulators; the result equals one pass over all images up to float64 summation order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mat_jax.eval.fid import FeatureStats, fid_from_stats
from mat_jax.eval.ids import discriminative_scores
from mat_jax.eval.kid import kernel_inception_distance
from mat_jax.eval.pixel import pixel_metrics
from mat_jax.eval.score import Score

__all__ = ["EvalAccumulator", "PIXEL_METRICS"]

PIXEL_METRICS = ("psnr", "ssim", "l1")


class EvalAccumulator:
    """`feature_fn`: [N, H, W, 3] uint8 -> [N, D] float features (e.g. the Inception FID network); without it,
    `update` computes the pixel metrics only and features come through `update_features`. `lpips_fn`:
    (real [N, H, W, 3] uint8, generated ditto) -> [N] LPIPS distances (e.g. `mat_jax.eval.lpips.LPIPS`)."""

    def __init__(
        self,
        feature_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        keep_features: bool = True,
        lpips_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ):
        self.feature_fn = feature_fn
        self.lpips_fn = lpips_fn
        self.pixel: dict[str, list[np.ndarray]] = {k: [] for k in PIXEL_METRICS}
        self.lpips: list[np.ndarray] = []
        self.real = FeatureStats(keep_all=keep_features)
        self.fake = FeatureStats(keep_all=keep_features)

    @staticmethod
    def _check_u8(x: np.ndarray, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"{what} must be [N, H, W, 3] (or [N, H, W, 1]) uint8, got {x.shape} {x.dtype}")
        return x

    def update(
        self,
        real_u8: np.ndarray,
        fake_u8: np.ndarray,
        real_NxD: np.ndarray | None = None,
        fake_NxD: np.ndarray | None = None,
    ) -> None:
        """A batch of pairs: real_u8 and fake_u8 [N, H, W, 3] uint8, fake[i] the inpainting of real[i]. Features
        computed elsewhere (on a device mesh, or real features from a cache) come as real_NxD / fake_NxD and are used
        instead of `feature_fn`."""
        real_u8, fake_u8 = self._check_u8(real_u8, "real images"), self._check_u8(fake_u8, "generated images")
        if real_u8.shape != fake_u8.shape:
            raise ValueError(f"real batch {real_u8.shape} and generated batch {fake_u8.shape} differ in shape")
        for k, v in pixel_metrics(real_u8, fake_u8).items():
            self.pixel[k].append(v)
        if self.lpips_fn is not None:
            d = np.asarray(self.lpips_fn(real_u8, fake_u8), np.float64)
            if d.shape != (len(real_u8),):
                raise ValueError(
                    f"lpips_fn returned shape {d.shape} for {len(real_u8)} pairs, expected one value per pair"
                )
            self.lpips.append(d)
        if (real_NxD is None) != (fake_NxD is None):
            raise ValueError("give both real and generated features, or neither")
        if real_NxD is not None:
            self.update_features(real_NxD, fake_NxD)
        elif self.feature_fn is not None:
            self.update_features(self.feature_fn(real_u8), self.feature_fn(fake_u8))

    def update_features(self, real_NxD: np.ndarray, fake_NxD: np.ndarray) -> None:
        if np.shape(real_NxD) != np.shape(fake_NxD):
            raise ValueError(
                f"real features {np.shape(real_NxD)} and generated features {np.shape(fake_NxD)} must pair one to one"
            )
        self.real.update(real_NxD)
        self.fake.update(fake_NxD)

    def merge(self, other: EvalAccumulator) -> EvalAccumulator:
        """New accumulator holding self's pairs then other's; neither input changes."""
        out = EvalAccumulator(self.feature_fn, lpips_fn=self.lpips_fn)
        out.pixel = {k: self.pixel[k] + other.pixel[k] for k in PIXEL_METRICS}
        out.lpips = self.lpips + other.lpips
        out.real, out.fake = self.real.merge(other.real), self.fake.merge(other.fake)
        return out

    def _pixel_values(self, k: str) -> np.ndarray:
        return np.concatenate(self.pixel[k]) if self.pixel[k] else np.zeros([0], np.float64)

    def _lpips_values(self) -> np.ndarray:
        return np.concatenate(self.lpips) if self.lpips else np.zeros([0], np.float64)

    def state(self) -> dict[str, np.ndarray]:
        out = {f"pixel/{k}": self._pixel_values(k) for k in PIXEL_METRICS}
        out["pair/lpips"] = self._lpips_values()
        out.update({f"real/{k}": v for k, v in self.real.state().items()})
        out.update({f"fake/{k}": v for k, v in self.fake.state().items()})
        return out

    @classmethod
    def from_state(
        cls,
        state: dict[str, np.ndarray],
        feature_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        lpips_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ) -> EvalAccumulator:
        out = cls(feature_fn, lpips_fn=lpips_fn)
        out.pixel = {k: [np.asarray(state[f"pixel/{k}"], np.float64)] for k in PIXEL_METRICS}
        out.lpips = [np.asarray(state.get("pair/lpips", np.zeros([0])), np.float64)]  # absent in older states
        for side in ("real", "fake"):
            sub = {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith(side + "/")}
            setattr(out, side, FeatureStats.from_state(sub))
        return out

    def result(self, kid_subsets: int = 100, kid_subset_size: int = 1000, kid_seed: int = 0) -> dict[str, Score]:
        """{'psnr', 'ssim', 'l1', 'lpips', 'fid', 'p_ids', 'u_ids', 'kid'} -> Score (value None with the reason if
        absent)."""
        out: dict[str, Score] = {}
        n_pix = len(self._pixel_values("psnr"))
        for k in PIXEL_METRICS:
            v = self._pixel_values(k)
            out[k] = Score(float(v.mean()), "") if n_pix else Score(None, "no image pairs were added")
        if n_pix and np.isinf(out["psnr"].value):
            out["psnr"] = Score(
                out["psnr"].value, "some pairs are identical (PSNR inf), so the mean is inf, as in the official script"
            )
        n_lpips = len(self._lpips_values())
        if n_pix == 0:
            out["lpips"] = Score(None, "no image pairs were added")
        elif n_lpips == 0:
            out["lpips"] = Score(None, "no LPIPS network given")
        elif n_lpips != n_pix:
            out["lpips"] = Score(
                None,
                f"LPIPS was computed for {n_lpips} of the {n_pix} pairs (merged accumulators "
                "with and without an LPIPS network)",
            )
        else:
            out["lpips"] = Score(float(self._lpips_values().mean()), "")
        if self.real.num == 0:
            none = Score(None, "no features were added (no feature network given)")
            out.update(fid=none, p_ids=none, u_ids=none, kid=none)
            return out
        out["fid"] = fid_from_stats(self.real, self.fake)
        if not (self.real.keep_all and self.fake.keep_all):
            kept = Score(None, "the accumulator kept only feature moments (keep_features=False)")
            out.update(p_ids=kept, u_ids=kept, kid=kept)
            return out
        real, fake = self.real.features(), self.fake.features()
        out["p_ids"], out["u_ids"] = discriminative_scores(real, fake)
        out["kid"] = kernel_inception_distance(real, fake, kid_subsets, kid_subset_size, kid_seed)
        return out
