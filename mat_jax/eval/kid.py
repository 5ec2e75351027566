"""Kernel Inception Distance (unbiased MMD², cubic polynomial kernel), as `metrics/kernel_inception_distance.py`.

k(x, y) = (xᵀy / D + 1)³; each of `num_subsets` subsets draws m = min(N_real, N_fake, max_subset_size) vectors of
each set without replacement; KID is the mean over subsets of the unbiased MMD² estimate. Differences from the
official code, both deliberate: the draws come from a seeded generator (the official uses numpy's global one, so
its KID changes from run to run when m < N), and the sums run in float64 (the official keeps float32 features).
"""

from __future__ import annotations

import numpy as np

from mat_jax.eval.score import Score

__all__ = ["kernel_inception_distance", "kid_subsets"]


def kid_subsets(n_real: int, n_fake: int, m: int, num_subsets: int, seed: int):
    """The (fake_idx [m], real_idx [m]) draws of each subset, in order (exposed so tests can recompute KID)."""
    rng = np.random.default_rng(seed)
    for _ in range(num_subsets):
        fake_idx = rng.choice(n_fake, m, replace=False)
        real_idx = rng.choice(n_real, m, replace=False)
        yield fake_idx, real_idx


def kernel_inception_distance(
    real_NxD: np.ndarray, fake_MxD: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0
) -> Score:
    real = np.asarray(real_NxD, np.float32).astype(np.float64)
    fake = np.asarray(fake_MxD, np.float32).astype(np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D, got real {real.shape} and generated {fake.shape}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    dim = real.shape[1]
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        return Score(
            None, f"KID needs at least 2 images in each set; got {real.shape[0]} real and {fake.shape[0]} generated"
        )
    t = 0.0
    for fake_idx, real_idx in kid_subsets(real.shape[0], fake.shape[0], m, num_subsets, seed):
        x, y = fake[fake_idx], real[real_idx]
        a = (x @ x.T / dim + 1) ** 3 + (y @ y.T / dim + 1) ** 3
        b = (x @ y.T / dim + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    note = "" if m >= 1000 else f"subsets of {m} images (the official metric uses 1000)"
    return Score(float(t / num_subsets / m), note)
