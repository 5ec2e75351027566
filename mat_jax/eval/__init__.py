"""Offline evaluation as the official MAT scripts compute it: FID, P-IDS / U-IDS, KID, PSNR / SSIM / L1.

The metric functions are numpy / scipy / scikit-learn and take features or uint8 images; `EvalAccumulator`
streams image pairs and merges across hosts. The Inception feature network and its input resize are JAX.
"""
