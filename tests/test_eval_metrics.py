"""The metric functions against independent computations (closed forms, brute force, other libraries)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import sklearn.svm

from mat_jax.data.demo_data import demo_images
from mat_jax.eval.accumulator import EvalAccumulator
from mat_jax.eval.fid import FeatureStats, fid_from_features, fid_from_stats, frechet_distance
from mat_jax.eval.ids import discriminative_scores
from mat_jax.eval.kid import kernel_inception_distance, kid_subsets
from mat_jax.eval.pixel import l1, pixel_metrics, psnr, ssim


def _gaussian(rng, n, mean, cov):
    return rng.multivariate_normal(mean, cov, size=n).astype(np.float32)


def _random_spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


# ------------------------------------------------------------------------------------------------- FID


def test_fid_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(0)
    x = _gaussian(rng, 300, np.zeros(16), _random_spd(rng, 16))
    assert abs(fid_from_features(x, x).value) < 1e-8
    few = x[:7]  # fewer images than dimensions: singular covariance, still ~0
    score = fid_from_features(few, few)
    assert abs(score.value) < 1e-6 and "singular" in score.note


def test_frechet_distance_closed_form_commuting_covariances():
    rng = np.random.default_rng(1)
    d = 6
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.5, 3.0, d), rng.uniform(0.5, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)
    # Σ₂ = I: tr sqrtm(Σ₁) = Σ √eig(Σ₁) for any SPD Σ₁ (not diagonal in a shared basis with anything)
    s = _random_spd(rng, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s) + d - 2 * np.sum(np.sqrt(np.linalg.eigvalsh(s)))
    assert frechet_distance(mu1, s, mu2, np.eye(d)) == pytest.approx(expected, rel=1e-10)


def test_fid_of_two_sampled_gaussians_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    d = 4
    mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.0, 2.0])
    a, b = np.array([1.0, 2.0, 0.5, 1.5]), np.array([2.0, 1.0, 0.5, 3.0])
    x, y = _gaussian(rng, 40_000, mu1, np.diag(a)), _gaussian(rng, 40_000, mu2, np.diag(b))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fid_from_features(x, y).value == pytest.approx(expected, rel=0.02)


def test_fid_uses_the_covariance_divided_by_n():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 3)).astype(np.float32), rng.normal(1.0, 2.0, size=(7, 3)).astype(np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)

    def independent(bias):
        return frechet_distance(
            y64.mean(0), np.cov(y64, rowvar=False, bias=bias), x64.mean(0), np.cov(x64, rowvar=False, bias=bias)
        )

    value = fid_from_features(x, y).value
    assert value == pytest.approx(independent(True), rel=1e-9)
    assert value != pytest.approx(independent(False), rel=1e-3)  # N − 1 would be a different number


def test_fid_needs_two_images():
    one = np.ones((1, 8), np.float32)
    score = fid_from_features(one, one)
    assert score.value is None and "at least 2" in score.note
    empty = FeatureStats()
    assert fid_from_stats(empty, empty).value is None


def test_feature_stats_streaming_and_merging_equal_one_pass():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(23, 5)).astype(np.float32)
    whole = FeatureStats()
    whole.update(x)
    streamed = FeatureStats()
    for chunk in np.array_split(x, [3, 4, 11, 11, 20]):  # includes an empty batch
        streamed.update(chunk)
    left, right = FeatureStats(), FeatureStats()
    left.update(x[:9])
    right.update(x[9:])
    merged = left.merge(right)
    restored = FeatureStats.from_state(merged.state())
    for s in (streamed, merged, restored):
        assert s.num == 23
        np.testing.assert_allclose(s.mean_cov()[0], whole.mean_cov()[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(s.mean_cov()[1], whole.mean_cov()[1], rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(s.features(), x)
    assert left.num == 9 and right.num == 14  # merge leaves its inputs alone
    with pytest.raises(ValueError, match="5-d"):
        whole.update(np.zeros((2, 6), np.float32))


# ------------------------------------------------------------------------------------------------- P-IDS / U-IDS


def _direct_ids(real, fake):
    """Written apart from the module: the decision value from coef_/intercept_, accuracies per class."""
    svm = sklearn.svm.LinearSVC(dual=False).fit(np.concatenate([real, fake]), [1] * len(real) + [0] * len(fake))
    w, b = svm.coef_[0].astype(np.float64), float(svm.intercept_[0])
    d_real, d_fake = real.astype(np.float64) @ w + b, fake.astype(np.float64) @ w + b
    acc_real, acc_fake = np.mean(d_real > 0), np.mean(d_fake <= 0)
    p_ids = sum(1 for i in range(len(real)) if d_fake[i] > d_real[i]) / len(real)
    return p_ids, 1 - 0.5 * (acc_real + acc_fake)


def test_ids_equal_a_direct_sklearn_computation():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(150, 6)).astype(np.float32)
    fake = (real + rng.normal(0.0, 0.7, size=real.shape) + 0.2).astype(np.float32)  # paired, slightly shifted
    p_ids, u_ids = discriminative_scores(real, fake)
    p_ref, u_ref = _direct_ids(real, fake)
    assert 0 < p_ids.value < 0.5 and 0 < u_ids.value < 0.5  # a non-trivial case
    assert p_ids.value == pytest.approx(p_ref, abs=1e-12)
    assert u_ids.value == pytest.approx(u_ref, abs=1e-12)
    assert p_ids.note == ""


def test_ids_pairing_is_by_row():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(120, 4)).astype(np.float32)
    fake = (real + rng.normal(0.0, 0.8, size=real.shape)).astype(np.float32)
    p_paired, _ = discriminative_scores(real, fake)
    p_ref, _ = _direct_ids(real, fake)
    order = rng.permutation(len(real))
    p_shuffled, _ = discriminative_scores(real, fake[order])  # same sets, other pairs
    p_shuffled_ref, _ = _direct_ids(real, fake[order])
    assert p_paired.value == pytest.approx(p_ref) and p_shuffled.value == pytest.approx(p_shuffled_ref)


def test_ids_say_when_the_svm_separates_by_construction():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(7, 64)).astype(np.float32)
    fake = rng.normal(size=(7, 64)).astype(np.float32)  # same distribution: any real metric would say "close"
    with pytest.warns(UserWarning, match="linearly separable"):
        p_ids, u_ids = discriminative_scores(real, fake)
    assert u_ids.value == 0.0 and p_ids.value == 0.0 and "no information" in u_ids.note
    with pytest.raises(ValueError, match="one to one"):
        discriminative_scores(real, fake[:6])


# ------------------------------------------------------------------------------------------------- KID


def _mmd2_brute(x, y):
    x, y = x.astype(np.float64), y.astype(np.float64)
    m, d = len(x), x.shape[1]
    k = lambda u, v: (float(np.dot(u, v)) / d + 1.0) ** 3
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_kid_equals_a_brute_force_computation():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(12, 5)).astype(np.float32)
    fake = rng.normal(0.5, 1.2, size=(10, 5)).astype(np.float32)
    score = kernel_inception_distance(real, fake, num_subsets=4, max_subset_size=6, seed=3)
    draws = list(kid_subsets(len(real), len(fake), 6, 4, 3))
    expected = np.mean([_mmd2_brute(fake[fi], real[ri]) for fi, ri in draws])
    assert score.value == pytest.approx(expected, rel=1e-10)
    assert "1000" in score.note
    # subsets as large as the sets: every draw is a permutation, so the seed cannot matter
    full = _mmd2_brute(fake, real[:10])
    for seed in (0, 1):
        assert kernel_inception_distance(real[:10], fake, num_subsets=3, seed=seed).value == pytest.approx(full)
    assert kernel_inception_distance(real[:1], fake).value is None


# ------------------------------------------------------------------------------------------------- PSNR / SSIM / L1


def _photo_pairs(n=3, h=40, w=52):
    photos = list(demo_images(("astronaut", "coffee", "chelsea")).values())
    rng = np.random.default_rng(9)
    pairs = []
    for i in range(n):
        real = photos[i % len(photos)][10 : 10 + h, 20 : 20 + w]
        fake = np.clip(real.astype(np.int16) + rng.integers(-30, 31, real.shape), 0, 255).astype(np.uint8)
        fake[5:15, 8:30] = 128  # a "filled hole"
        pairs.append((real, fake))
    return pairs


def _independent_pixel(real, fake):
    a, b = real.astype(np.float64), fake.astype(np.float64)
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / 4.5)
    win = np.outer(g, g) / np.outer(g, g).sum()
    f = lambda x: scipy.ndimage.correlate(x, win, mode="nearest")[5:-5, 5:-5]
    c1, c2 = 6.5025, 58.5225
    maps = []
    for c in range(3):
        x, y = a[..., c], b[..., c]
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    mse = np.sum((a - b) ** 2) / a.size
    return 10 * np.log10(255.0**2 / mse), float(np.mean([m.mean() for m in maps])), np.abs(a - b).sum() / a.size / 255


def test_pixel_metrics_equal_an_independent_float64_computation():
    import skimage.metrics

    for real, fake in _photo_pairs():
        p, s, d = _independent_pixel(real, fake)
        assert psnr(real, fake) == pytest.approx(p, rel=1e-12)
        assert ssim(real, fake) == pytest.approx(s, rel=1e-10)
        assert l1(real, fake) == pytest.approx(d, rel=1e-12)
        # scikit-image's SSIM with the same window, constants and 5-px crop
        s_sk = skimage.metrics.structural_similarity(
            real, fake, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        assert ssim(real, fake) == pytest.approx(s_sk, rel=1e-8)


def test_pixel_metrics_edge_cases():
    real, fake = _photo_pairs(1)[0]
    assert psnr(real, real) == float("inf") and ssim(real, real) == pytest.approx(1.0) and l1(real, real) == 0.0
    gray = real[..., 0]
    assert ssim(gray, fake[..., 0]) == pytest.approx(
        ssim(np.repeat(gray[..., None], 3, 2), np.repeat(fake[..., :1], 3, 2))
    )
    with pytest.raises(ValueError, match="same size"):
        psnr(real, fake[:-1])
    with pytest.raises(ValueError, match="at least 11"):
        ssim(real[:10], fake[:10])
    batch = pixel_metrics(np.stack([real, real]), np.stack([fake, real]))
    assert batch["psnr"][1] == float("inf") and batch["l1"][0] == pytest.approx(l1(real, fake))


# ------------------------------------------------------------------------------------------------- accumulator


def test_accumulator_seven_images_streamed_merged_and_one_pass_agree():
    pairs = _photo_pairs(7, 24, 30)
    real = np.stack([r for r, _ in pairs])
    fake = np.stack([f for _, f in pairs])
    rng = np.random.default_rng(10)
    feats_r = rng.normal(size=(7, 12)).astype(np.float32)
    feats_f = (feats_r + rng.normal(0.0, 0.5, size=feats_r.shape)).astype(np.float32)

    one = EvalAccumulator()
    one.update(real, fake)
    one.update_features(feats_r, feats_f)
    a, b = EvalAccumulator(), EvalAccumulator()
    a.update(real[:3], fake[:3])
    a.update_features(feats_r[:3], feats_f[:3])
    b.update(real[3:5], fake[3:5])
    b.update(real[5:], fake[5:])
    b.update_features(feats_r[3:], feats_f[3:])
    merged = EvalAccumulator.from_state(a.merge(b).state())

    r_one, r_merged = one.result(kid_subsets=5), merged.result(kid_subsets=5)
    assert set(r_one) == {"psnr", "ssim", "l1", "lpips", "fid", "p_ids", "u_ids", "kid"}
    assert r_one["lpips"].value is None and r_one["lpips"].note == "no LPIPS network given"  # tests/test_eval_lpips.py
    for k in (k for k in r_one if k != "lpips"):
        assert r_one[k].value is not None, (k, r_one[k].note)
        assert r_merged[k].value == pytest.approx(r_one[k].value, rel=1e-9, abs=1e-12), k
    per_image = pixel_metrics(real, fake)
    assert r_one["ssim"].value == pytest.approx(per_image["ssim"].mean())
    assert r_one["fid"].value == pytest.approx(fid_from_features(feats_r, feats_f).value)
    assert "singular" in r_one["fid"].note  # 7 images for 12-d features


def test_accumulator_with_a_feature_fn_and_too_few_images():
    real, fake = _photo_pairs(1, 16, 16)[0]
    mean_colour = lambda x: x.reshape(len(x), -1, 3).mean(1).astype(np.float32)
    acc = EvalAccumulator(feature_fn=mean_colour)
    acc.update(real[None], fake[None])
    with pytest.warns(UserWarning, match="linearly separable"):
        res = acc.result()
    assert res["fid"].value is None and "at least 2" in res["fid"].note
    assert res["kid"].value is None and res["psnr"].value == pytest.approx(psnr(real, fake))
    empty = EvalAccumulator().result()
    assert empty["psnr"].value is None and empty["fid"].value is None
    with pytest.raises(ValueError, match="uint8"):
        acc.update(real[None].astype(np.float32), fake[None])


def test_ids_note_and_pass_on_an_svm_that_did_not_converge(monkeypatch):
    import sklearn.exceptions

    fit = sklearn.svm.LinearSVC.fit

    def fit_that_warns(self, *args, **kwargs):  # liblinear's own warning, as at N = 1000, D = 2048
        out = fit(self, *args, **kwargs)
        import warnings

        warnings.warn("Liblinear failed to converge", sklearn.exceptions.ConvergenceWarning, stacklevel=2)
        return out

    rng = np.random.default_rng(11)
    real = rng.normal(size=(100, 4)).astype(np.float32)
    fake = (real + rng.normal(0.0, 1.0, size=real.shape)).astype(np.float32)
    expected = _direct_ids(real, fake)[0]
    monkeypatch.setattr(sklearn.svm.LinearSVC, "fit", fit_that_warns)
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        p_ids, u_ids = discriminative_scores(real, fake)
    assert "1000-iteration limit" in p_ids.note and p_ids.value == pytest.approx(expected)


def test_package_exports_resolve_to_their_modules():
    import importlib

    import mat_jax.eval as ev

    for name, module in ev._EXPORTS.items():
        assert getattr(ev, name) is getattr(importlib.import_module(f"mat_jax.eval.{module}"), name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ev.nope  # noqa: B018
