"""Official MAT on Places365 at 512x512 (README command of the official repo).

Run: mat-jax train --config configs/places512.py --workdir runs/places512 [--config.KEY=VALUE ...]
"""

import ml_collections


def model_config(**overrides) -> ml_collections.ConfigDict:
    """The MAT architecture; defaults are the official networks. Every ablation switch is here."""
    m = ml_collections.ConfigDict()
    m.resolution = 512  # Image side (power of two; official releases: 256, 512).
    m.img_channels = 3  # RGB.
    m.z_dim = 512  # Latent z size.
    m.w_dim = 512  # Intermediate latent w size.
    m.c_dim = 0  # Class conditioning size (0 = unconditional, as every released model).
    m.mapping_layers = 8  # FC layers of the mapping network.
    m.mapping_lr_multiplier = 0.01  # Equalized-LR multiplier of the mapping FCs.
    m.w_avg_beta = 0.995  # Decay of the tracked w average (used by truncation).
    m.channel_base = 32768  # Channels at resolution r: min(channel_base // r, channel_max) (official table).
    m.channel_max = 512  # Upper bound of that table.
    m.stage1_dim = 180  # Stage-1 token width.
    m.stage1_heads = 6  # Attention heads (head dim = dim / heads).
    m.stage1_token_res = 64  # Token map side after the conv head (conv head downsamples R -> this).
    m.stage1_depths = (2, 3, 4, 3, 2)  # Transformer blocks in tran.0 .. tran.4 (64, 32, 16, 32, 64 tokens).
    m.stage1_window_sizes = (8, 16, 16, 16, 8)  # Window side per layer; a window covering the map is global.
    m.stage1_mlp_ratio = 2.0  # MLP hidden width = dim * ratio.
    m.stage1_masked_layers = 2  # Encoder layers that see the mask: 2 = tran.0 and tran.1 (official), 1, or 0.
    m.attention = "mca"  # 'mca' masked window attention (official) | 'window' no mask | 'full' masked, global.
    m.mask_update = "window_or"  # 'window_or' dynamic mask update (official) | 'none' static mask.
    m.block = "adjusted"  # 'adjusted' no LN, concat+fuse (official) | 'prenorm_residual' LN + residuals.
    m.shifted_windows = True  # Shift odd blocks by window/2 (Swin); False = never shift.
    m.style_manipulation = True  # The two Bernoulli(0.5) style-manipulation noise mixes (official: on).
    m.mbstd_group_size = 4  # D minibatch-std group (the effective group is min(this, per-device batch)).
    m.mbstd_num_channels = 1  # D minibatch-std channels.
    m.update(overrides)
    return m


def get_config():
    config = ml_collections.ConfigDict()
    config.model = model_config()
    return config
