"""P-IDS and U-IDS (paired / unpaired Inception discriminative scores), as the official MAT metrics compute them.

Official behaviour (`metrics/inception_discriminative_score.py`, `evaluatoin/cal_fid_pids_uids.py`, from
co-mod-gan): a `sklearn.svm.LinearSVC(dual=False)` (C = 1) is fitted on real → 1, generated → 0 and scored on the
same features. U-IDS = 1 − training accuracy; P-IDS = mean over pairs of [d(fake_i) > d(real_i)] with d the SVM
decision value and pair i = row i of both sets (the offline script pairs sorted file names, asserted equal).

With 2N ≤ D + 1 points (D = 2048 for Inception) any labelling is linearly separable, so both scores are 0 whatever
the images (official issues #86, #131); the result says so instead of passing the zeros off as a measurement.
"""

from __future__ import annotations

import warnings

import numpy as np

from mat_jax.eval.score import Score

__all__ = ["discriminative_scores"]


def discriminative_scores(real_NxD: np.ndarray, fake_NxD: np.ndarray) -> tuple[Score, Score]:
    """(P-IDS, U-IDS) of paired features: row i of `fake_NxD` is the inpainting of row i of `real_NxD`."""
    import sklearn.svm  # imported here: sklearn takes ~1 s to import and only this metric needs it

    real = np.asarray(real_NxD, np.float32)
    fake = np.asarray(fake_NxD, np.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D, got real {real.shape} and generated {fake.shape}")
    if real.shape[0] != fake.shape[0]:
        raise ValueError(
            f"P-IDS pairs real and generated images one to one: got {real.shape[0]} real and "
            f"{fake.shape[0]} generated feature rows"
        )
    n, dim = real.shape
    if n < 1:
        missing = Score(None, "P-IDS / U-IDS need at least 1 real and 1 generated image; got none")
        return missing, missing
    import sklearn.exceptions

    svm = sklearn.svm.LinearSVC(dual=False)
    inputs = np.concatenate([real, fake])
    targets = np.array([1] * n + [0] * n)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sklearn.exceptions.ConvergenceWarning)
        svm.fit(inputs, targets)
    converged = True
    for w in caught:  # said in the note, and passed on
        converged &= not issubclass(w.category, sklearn.exceptions.ConvergenceWarning)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    u_ids = 1.0 - float(svm.score(inputs, targets))
    p_ids = float(np.mean(svm.decision_function(fake) > svm.decision_function(real)))
    note = ""
    if 2 * n <= dim + 1:
        note = (
            f"{2 * n} feature vectors in {dim} dimensions are always linearly separable: P-IDS and U-IDS are 0 "
            "for any images at this size and carry no information (the paper uses 36,500 pairs)"
        )
        warnings.warn(note, stacklevel=2)
    elif u_ids == 0.0:
        note = f"the SVM separated all {n} real from all {n} generated images (training accuracy 1)"
    if not converged:
        note = "; ".join(
            filter(
                None,
                [note, "liblinear stopped at its 1000-iteration limit before converging (the official settings, kept)"],
            )
        )
    return Score(p_ids, note), Score(u_ids, note)
