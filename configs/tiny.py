"""A tiny MAT for tests: 64 px, narrow channels, 2 blocks per transformer layer; trains on the bundled photos.

Tests shrink it further with overrides (e.g. 32 px); see tests/test_train_*.py.
"""

from mat_jax.config import base_config


def get_config():
    config = base_config()
    config.model.update(
        dict(
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
    )
    config.data.update(
        dict(
            source="demo",  # The bundled scikit-image photos (no dataset needed).
            resolution=64,  # Matches the model.
            num_workers=0,  # Decode in the trainer process (fast start, resumable onto any process count).
            read_threads=1,  # Two cores in CI.
            prefetch_batches=2,  # Small buffer.
        )
    )
    config.train.global_batch_size = 8  # Divisible by 1, 2, 4 and 8 devices.
    config.train.total_steps = 4  # A few iterations.
    config.train.mbstd_shards = 2  # Fixed, so 1-device and 8-device runs compute the same statistic.
    config.loss.pcp_ratio = 0.0  # No VGG weights in tests (tests that need PCP pass random ones).
    config.optimizer.d_reg_interval = 2  # R1 often enough to be exercised by a few steps.
    config.checkpoint.every_steps = 2  # Save often.
    config.checkpoint.async_save = False  # Deterministic timing in tests.
    config.logging.log_every_steps = 1  # Log every iteration.
    config.logging.grid_every_steps = 0  # 0 = grids only at the end.
    config.logging.grid_size = 2  # Two sample rows.
    config.logging.tensorboard = False  # Tests read metrics.jsonl.
    config.logging.progress_bar = False  # Quiet.
    return config
