"""PSNR, SSIM and L1 per image pair, as `evaluatoin/cal_psnr_ssim_l1.py` computes them (numpy, float64).

Official behaviour: images are 0–255 RGB (a 1-channel image is repeated to 3) taken as float64.
PSNR = 20·log10(255 / √MSE) over all pixels and channels, inf for identical images.
SSIM: 11×11 Gaussian window (σ = 1.5, normalised to sum 1, as cv2.getGaussianKernel), C1 = (0.01·255)²,
C2 = (0.03·255)², each channel filtered separately, the SSIM map cropped by 5 px on every side and averaged over
pixels and channels. The crop leaves exactly the positions where the window lies inside the image, so this module
filters in 'valid' mode (separably) and the border rule of cv2.filter2D never matters.
L1 = mean |a − b| on [0, 1].
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gaussian_window_1d", "psnr", "ssim", "l1", "pixel_metrics", "as_rgb_float64"]

WINDOW = 11
SIGMA = 1.5
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def gaussian_window_1d(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """exp(−(i − c)² / 2σ²) normalised to sum 1 (cv2.getGaussianKernel for sigma > 0)."""
    i = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(i**2) / (2 * sigma**2))
    return g / g.sum()


def as_rgb_float64(image: np.ndarray, where: str = "image") -> np.ndarray:
    """[H, W], [H, W, 1] or [H, W, 3] with values in 0–255 -> [H, W, 3] float64 (gray repeated, as the official)."""
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise ValueError(f"{where}: expected [H, W], [H, W, 1] or [H, W, 3], got shape {x.shape}")
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return x.astype(np.float64)


def _pair(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_rgb_float64(real, "real image"), as_rgb_float64(fake, "generated image")
    if a.shape != b.shape:
        raise ValueError(f"real image is {a.shape}, generated image is {b.shape}: they must have the same size")
    return a, b


def psnr(real: np.ndarray, fake: np.ndarray) -> float:
    a, b = _pair(real, fake)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return 20 * math.log10(255.0 / math.sqrt(mse))


def _filter_valid(x_HxWxC: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable correlation with g ⊗ g, 'valid' positions only: [H − k + 1, W − k + 1, C]."""
    k = g.shape[0]
    h, w = x_HxWxC.shape[0] - k + 1, x_HxWxC.shape[1] - k + 1
    rows = sum(g[i] * x_HxWxC[i : i + h] for i in range(k))
    return sum(g[j] * rows[:, j : j + w] for j in range(k))


def ssim(real: np.ndarray, fake: np.ndarray) -> float:
    a, b = _pair(real, fake)
    if a.shape[0] < WINDOW or a.shape[1] < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW}×{WINDOW} pixels, got {a.shape[0]}×{a.shape[1]}")
    g = gaussian_window_1d()
    mu1, mu2 = _filter_valid(a, g), _filter_valid(b, g)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = _filter_valid(a * a, g) - mu1_sq
    sigma2_sq = _filter_valid(b * b, g) - mu2_sq
    sigma12 = _filter_valid(a * b, g) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + C1) * (2 * sigma12 + C2)) / ((mu1_sq + mu2_sq + C1) * (sigma1_sq + sigma2_sq + C2))
    return float(ssim_map.mean())


def l1(real: np.ndarray, fake: np.ndarray) -> float:
    a, b = _pair(real, fake)
    return float(np.mean(np.abs(a / 255.0 - b / 255.0)))


def pixel_metrics(real_NxHxWxC: np.ndarray, fake_NxHxWxC: np.ndarray) -> dict[str, np.ndarray]:
    """{'psnr', 'ssim', 'l1'} -> [N] float64, one value per image pair (a list of differently sized pairs works)."""
    if len(real_NxHxWxC) != len(fake_NxHxWxC):
        raise ValueError(f"{len(real_NxHxWxC)} real images but {len(fake_NxHxWxC)} generated images")
    out = {"psnr": [], "ssim": [], "l1": []}
    for a, b in zip(real_NxHxWxC, fake_NxHxWxC, strict=True):
        out["psnr"].append(psnr(a, b))
        out["ssim"].append(ssim(a, b))
        out["l1"].append(l1(a, b))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}
