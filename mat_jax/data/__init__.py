"""Data pipeline: MAT mask generators, image/mask sources, preprocessing, the grain pipeline, demo photos.

Mask convention everywhere: 1 = known pixel, 0 = hole (float32 `[H, W, 1]`); mask files white = known.
Modules (import the one you need; nothing heavy is imported here):
  masks        official MAT free-form generators (exact draw order)    masks_extra  LaMa-style kinds, make_mask
  mask_io      converters (LaMa <-> MAT), mask files                   mask_report  hole-ratio histograms
  preprocess   decode, official crop/pad/flip, [-1, 1] range           sources      folder/TFDS/ArrayRecord/mask sources
  tfds_builder image folder -> TFDS array_record (no TensorFlow)       pipeline     grain pipeline, make_train_iterator
  demo_data    bundled scikit-image photos                             (`mat-jax masks` / `prepare-data`: commands/)
"""
