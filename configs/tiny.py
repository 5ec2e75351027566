"""A tiny MAT for tests: 64 px, narrow channels, 2 blocks per transformer layer."""

import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location("_places512", pathlib.Path(__file__).with_name("places512.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config():
    config = _base.get_config()
    config.model = _base.model_config(
        resolution=64,  # Smallest size the stage-2 encoder (down to 16x16) supports comfortably.
        z_dim=32,  # Narrow latents.
        w_dim=32,
        mapping_layers=2,  # Short mapping network.
        channel_base=1024,  # nf: 64px -> 16, 32px -> 32, <=16px -> 32.
        channel_max=32,
        stage1_dim=24,  # Narrow tokens, 2 heads of 12.
        stage1_heads=2,
        stage1_token_res=32,  # One partial-conv downsampling step (64 -> 32).
        stage1_depths=(2, 2, 2, 2, 2),  # Keeps one shifted block per windowed layer.
        stage1_window_sizes=(8, 8, 8, 8, 8),  # 32/16 maps windowed, 8x8 bottleneck global.
        mbstd_group_size=2,
    )
    return config
