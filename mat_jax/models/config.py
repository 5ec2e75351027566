"""The static model configuration: every shape- or control-flow-changing choice of MAT.

`MATConfig` is a frozen (hashable) dataclass so Flax modules can hold it as an attribute and
`jax.jit` traces once per (config, input shape). Defaults are the official networks; the
ablation switches are documented field by field (and again in `configs/*.py`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from mat_jax.kernels.settings import ALGORITHMS as CONV_ALGORITHMS
from mat_jax.models import constants

ATTENTION_KINDS = ("mca", "window", "full")
MASK_UPDATES = ("window_or", "none")
BLOCK_KINDS = ("adjusted", "prenorm_residual")
STAGE1_EMBEDS = ("conv", "linear_patch")
REMAT_LEVELS = ("none", "transformer", "all")  # in increasing order of what is recomputed (models/remat.py)
EXECUTION_FIELDS = ("conv", "remat")  # fields that choose how the networks run, not what they compute


@dataclasses.dataclass(frozen=True)
class MATConfig:
    """Architecture of the MAT generator and discriminator (defaults = official, 512 px)."""

    resolution: int = 512  # Image side (square, power of two). Official models: 256, 512.
    img_channels: int = 3  # RGB.
    z_dim: int = 512  # Latent z size.
    w_dim: int = 512  # Intermediate latent w size.
    c_dim: int = 0  # Class-conditioning size (0 in every released model).
    mapping_layers: int = 8  # FC layers in the mapping network.
    mapping_lr_multiplier: float = 0.01  # Equalized-LR multiplier of the mapping FCs.
    w_avg_beta: float = 0.995  # EMA decay of the tracked w average (used by truncation).
    channel_base: int = constants.CHANNEL_BASE  # nf(r) = min(channel_base // r, channel_max): the official table.
    channel_max: int = constants.CHANNEL_MAX
    # ---- stage 1 (coarse transformer network) ----
    stage1_dim: int = 180  # Token width.
    stage1_heads: int = 6  # Attention heads (head_dim = dim / heads).
    stage1_token_res: int = 64  # Token map side after the conv head (n_down = log2(res / token_res)).
    # 'conv': the official partial-conv head (n_down stride-2 convs; their features are the decoder's skips) |
    # 'linear_patch': ViT-style linear embedding of non-overlapping (res / token_res)^2 patches (no conv features, so
    # the stage-1 decoder gets no encoder skips; a token is valid when any pixel of its patch is known).
    stage1_embed: str = "conv"
    stage1_depths: tuple[int, ...] = (2, 3, 4, 3, 2)  # Blocks in tran.0..tran.4.
    stage1_window_sizes: tuple[int, ...] = (8, 16, 16, 16, 8)  # Window side in tran.0..tran.4.
    stage1_mlp_ratio: float = 2.0  # MLP hidden = dim * ratio.
    stage1_masked_layers: int = 2  # How many encoder layers (tran.0, tran.1) see the mask (official 2).
    attention: str = "mca"  # 'mca' masked window attention | 'window' plain | 'full' masked, global.
    mask_update: str = "window_or"  # 'window_or' official dynamic update | 'none' static mask.
    block: str = "adjusted"  # 'adjusted' (no LN, concat+fuse) | 'prenorm_residual' (LN + residuals).
    shifted_windows: bool = True  # Shift odd blocks by window/2 (Swin).
    style_manipulation: bool = True  # The two Bernoulli(0.5) noise-mixing maps (SMM).
    # ---- stages ----
    # 2: the official coarse-to-fine generator (stage 2, the StyleGAN2-like network of synthesis.py, refines stage 1) |
    # 1: single stage: the output is stage 1's composite; stage 2 is not built (no enc / dec / to_style / stage-2
    # to_square params, no noise_const buffers) and the generator returns (stage 1, stage 1).
    stages: int = 2
    # ---- discriminator ----
    # True: the official second branch (Dis_stg1, fc0_stg1, fc1_stg1; half width) judges stage 1's image with its own
    # adversarial loss and R1 term | False: D has the main branch only (no stage-1 loss, no stage-1 R1 term).
    d_stage1: bool = True
    mbstd_group_size: int = 4  # Official constructor default (training uses min(8, per-device batch)).
    mbstd_num_channels: int = 1
    # ---- execution (not architecture: same weights, same function up to float rounding) ----
    conv: str = "auto"  # Convolution algorithm, mat_jax.kernels.settings: 'auto' | 'xla' | 'custom' | 'winograd'.
    remat: str = "none"  # Recompute G's blocks in the backward pass (models/remat.py): 'none' | 'transformer' (the
    #                      stage-1 transformer layers) | 'all' (every synthesis block of both stages). Memory for time.

    def __post_init__(self):
        validate(self)

    # --- derived, static quantities ---
    @property
    def res_log2(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def num_ws(self) -> int:
        """Number of w vectors the synthesis consumes: 2*log2(R) - 6 (12 @512, 10 @256)."""
        return constants.num_ws(self.resolution)

    @property
    def stage1_n_down(self) -> int:
        return int(math.log2(self.resolution // self.stage1_token_res))

    @property
    def stage1_token_sizes(self) -> tuple[int, ...]:
        """Token map side of tran.0..tran.4: T, T/2, T/4, T/2, T."""
        t = self.stage1_token_res
        return (t, t // 2, t // 4, t // 2, t)

    @property
    def stage1_global_downs(self) -> int:
        """Stride-2 convs of stage 1's global-style head: bottleneck side -> 1 (4 officially)."""
        return int(math.log2(self.stage1_token_res // 4))

    @property
    def stage2_style_dim(self) -> int:
        """Decoder style = [w, gs]; gs has 2 * nf(4) channels (1024 officially)."""
        return self.w_dim + 2 * nf(self, 4)

    def replace(self, **kw: Any) -> "MATConfig":
        return dataclasses.replace(self, **kw)

    @classmethod
    def from_dict(cls, d: Any) -> "MATConfig":
        """From a dict / ml_collections ConfigDict with the same field names (unknown keys rejected)."""
        d = dict(d)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown model config field(s): {unknown}; known: {sorted(names)}")
        for k in ("stage1_depths", "stage1_window_sizes"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def architecture(self) -> "MATConfig":
        """This config with the execution fields (EXECUTION_FIELDS) at their defaults: equal for equal networks."""
        return dataclasses.replace(
            self, **{f.name: f.default for f in dataclasses.fields(self) if f.name in EXECUTION_FIELDS}
        )


def nf(cfg: MATConfig, res: int) -> int:
    """Channels at pixel resolution `res` (official table 512:64, 256:128, 128:256, <=64:512)."""
    return constants.channels(res, cfg.channel_base, cfg.channel_max)


def validate(cfg: MATConfig) -> None:
    """Raise ValueError for a configuration the architecture cannot build, naming the field."""
    r = cfg.resolution
    if r < 32 or r & (r - 1):
        raise ValueError(f"resolution must be a power of two >= 32, got {r}")
    t = cfg.stage1_token_res
    if t < 8 or t & (t - 1) or t >= r:
        raise ValueError(
            f"stage1_token_res must be a power of two >= 8 and < resolution ({r}), got {t}: "
            "stage 1 needs at least one down/up-sampling step between the image and the token map"
        )
    if r < 32:
        raise ValueError("the stage-2 encoder ends at 16x16, so resolution must be >= 32")
    if len(cfg.stage1_depths) != 5 or len(cfg.stage1_window_sizes) != 5:
        raise ValueError("stage1_depths and stage1_window_sizes need 5 entries (tran.0 .. tran.4)")
    for i, (size, ws) in enumerate(zip(cfg.stage1_token_sizes, cfg.stage1_window_sizes, strict=True)):
        eff = min(ws, size)
        if size % eff:
            raise ValueError(f"stage1_window_sizes[{i}]={ws} does not tile the {size}x{size} token map")
    if cfg.stage1_dim % cfg.stage1_heads:
        raise ValueError(f"stage1_dim={cfg.stage1_dim} is not divisible by stage1_heads={cfg.stage1_heads}")
    if not 0 <= cfg.stage1_masked_layers <= 2:
        raise ValueError("stage1_masked_layers must be 0, 1 or 2 (only encoder layers carry a mask)")
    if cfg.attention not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {cfg.attention!r}")
    if cfg.mask_update not in MASK_UPDATES:
        raise ValueError(f"mask_update must be one of {MASK_UPDATES}, got {cfg.mask_update!r}")
    if cfg.conv not in CONV_ALGORITHMS:
        raise ValueError(f"conv must be one of {CONV_ALGORITHMS}, got {cfg.conv!r}")
    if cfg.stage1_embed not in STAGE1_EMBEDS:
        raise ValueError(f"stage1_embed must be one of {STAGE1_EMBEDS}, got {cfg.stage1_embed!r}")
    if cfg.remat not in REMAT_LEVELS:
        raise ValueError(f"remat must be one of {REMAT_LEVELS}, got {cfg.remat!r}")
    if cfg.block not in BLOCK_KINDS:
        raise ValueError(f"block must be one of {BLOCK_KINDS}, got {cfg.block!r}")
    if cfg.stages not in (1, 2):
        raise ValueError(f"stages must be 1 (stage 1 alone) or 2 (stage 2 refines stage 1), got {cfg.stages!r}")
    if cfg.stages == 1 and cfg.d_stage1:
        raise ValueError(
            "model.stages=1 with model.d_stage1=True is impossible: a single-stage generator's output is stage 1's "
            "image, so a stage-1 D branch would judge the same image as the main branch; set model.d_stage1=False "
            "(or model.stages=2)"
        )
    if cfg.channel_base // r < 1:
        raise ValueError(f"channel_base={cfg.channel_base} gives no channels at resolution {r}")
