"""Tiny model configurations for fast CPU tests."""

from mat_jax.models import MATConfig

TINY = MATConfig(
    resolution=64,
    z_dim=32,
    w_dim=32,
    mapping_layers=2,
    channel_base=1024,
    channel_max=32,
    stage1_dim=24,
    stage1_heads=2,
    stage1_token_res=32,
    stage1_depths=(2, 2, 2, 2, 2),
    stage1_window_sizes=(8, 8, 8, 8, 8),
    mbstd_group_size=2,
)
