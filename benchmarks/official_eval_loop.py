"""The official MAT evaluation scripts' work, for timing (benchmarks/bench_eval.py): written from their behaviour.

`evaluatoin/cal_fid_pids_uids.py`: for each sorted file pair, read both PNGs, run NVIDIA's TorchScript Inception on
each at batch 1 (the torch recipe of `mat_jax.eval.torch_reference`), then FID (float64 moments, covariance / N,
`scipy.linalg.sqrtm`) and P-IDS / U-IDS (`LinearSVC(dual=False)`). `evaluatoin/cal_psnr_ssim_l1.py`: a second pass
that reads both folders again and computes PSNR / SSIM (OpenCV `filter2D`, float64) / L1 per pair. Needs torch and
`opencv-python-headless` (the `bench` extra).
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
from PIL import Image


def _pairs(results: pathlib.Path, gt: pathlib.Path) -> list[tuple[pathlib.Path, pathlib.Path]]:
    a, b = sorted(results.glob("*.png")), sorted(gt.glob("*.png"))
    assert [p.stem for p in a] == [p.stem for p in b]
    return list(zip(a, b, strict=True))


def _read(path: pathlib.Path) -> np.ndarray:
    image = np.array(Image.open(path))
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def feature_pass(results: pathlib.Path, gt: pathlib.Path, net) -> tuple[np.ndarray, np.ndarray]:
    """(real, fake) [N, 2048] float64: the per-image part of cal_fid_pids_uids.py."""
    from mat_jax.eval.torch_reference import torchscript_features

    fake, real = [], []
    for p_fake, p_real in _pairs(results, gt):
        fake.append(torchscript_features(net, _read(p_fake)[None])[0])
        real.append(torchscript_features(net, _read(p_real)[None])[0])
    return np.asarray(real, np.float64), np.asarray(fake, np.float64)


def set_statistics(real_f: np.ndarray, fake_f: np.ndarray) -> dict:
    """FID and P-IDS / U-IDS of the features: the per-set part of cal_fid_pids_uids.py."""
    import scipy.linalg
    from sklearn.svm import LinearSVC

    mu1, mu2 = real_f.mean(0), fake_f.mean(0)
    s1 = (real_f - mu1).T @ (real_f - mu1) / len(real_f)
    s2 = (fake_f - mu2).T @ (fake_f - mu2) / len(fake_f)
    root, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
    fid = float(np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - 2 * np.real(root)))
    svm = LinearSVC(dual=False)
    svm.fit(np.concatenate([real_f, fake_f]), np.r_[np.ones(len(real_f)), np.zeros(len(fake_f))])
    d_real, d_fake = svm.decision_function(real_f), svm.decision_function(fake_f)
    u_ids = 0.5 * (np.mean(d_real < 0) + np.mean(d_fake > 0))
    p_ids = float(np.mean(d_fake > d_real))
    return {"fid": fid, "p_ids": p_ids, "u_ids": float(u_ids)}


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    window = k @ k.T

    def blur(x):
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1, mu2 = blur(a), blur(b)
    var1, var2, cov = blur(a * a) - mu1**2, blur(b * b) - mu2**2, blur(a * b) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * cov + c2)) / ((mu1**2 + mu2**2 + c1) * (var1 + var2 + c2))
    return float(ssim_map.mean())


def pixel_pass(results: pathlib.Path, gt: pathlib.Path) -> dict:
    psnr, ssim, l1 = [], [], []
    for p_fake, p_real in _pairs(results, gt):
        a, b = _read(p_fake).astype(np.float64), _read(p_real).astype(np.float64)
        mse = np.mean((a - b) ** 2)
        psnr.append(math.inf if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse)))
        ssim.append(_ssim(a, b))
        l1.append(np.mean(np.abs(a / 255.0 - b / 255.0)))
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)), "l1": float(np.mean(l1))}
