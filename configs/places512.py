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


def data_config(**overrides) -> ml_collections.ConfigDict:
    """Input pipeline (field names = mat_jax.data.pipeline.DataConfig; unknown keys are rejected there)."""
    d = ml_collections.ConfigDict()
    d.source = "folder"  # folder | tfds | array_record | demo (the bundled scikit-image photos).
    d.path = ""  # Image folder / TFDS name / ArrayRecord glob. Required: --config.data.path=/data/places365/train.
    d.resolution = 512  # Crop side; must equal model.resolution (checked before step 0).
    d.crop = "official"  # Reflect-pad small sides, then a random crop (official ImageFolderMaskDataset).
    d.flip = True  # Random horizontal flips (official --mirror=True).
    d.mask_kind = "mat_large"  # Official free-form + box mask generator (dataset_512 / dataset_256).
    d.hole_range = (0.0, 1.0)  # Hole-ratio rejection interval of the mask generator (official: [0, 1]).
    d.num_workers = 4  # grain worker processes per host (0 = decode in the trainer; needed to resume onto
    #                   a different process count).
    d.read_threads = 4  # Decode threads per process.
    d.prefetch_batches = 4  # Batches prefetched per process.
    d.labels = "none"  # Class labels: none (unconditional, every released model) | dataset_json | subfolders | tfds.
    d.label_key = "label"  # TFDS integer feature holding the class (data.labels="tfds").
    d.update(overrides)
    return d


def training_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Everything but the model and data sections: the official README recipe (spec section 5)."""
    config.seed = 0  # Seeds parameter init, latents, noise, SMM maps (via the train state) and the data stream.

    config.train = ml_collections.ConfigDict()
    config.train.global_batch_size = 32  # Images per iteration over all devices (README --batch=32); must be
    #                                      divisible by the device count.
    config.train.total_kimg = 50000  # Training length in thousands of images (Places: 50000, CelebA-HQ: 25000).
    config.train.total_steps = 0  # If > 0, overrides total_kimg: stop after this many iterations.
    config.train.mbstd_shards = 8  # Minibatch-std statistic per contiguous shard of this many (README: 8 GPUs x 4
    #                                images, group min(mbstd_group_size, 4)); 0 = one shard per device.
    config.train.compute_dtype = "float32"  # float32 (official) | bfloat16 (deviation: activations and weight
    #                                        casts in bf16; float32 master weights and optimiser states).
    config.train.max_consecutive_nonfinite = 10  # Stop with an error after this many non-finite iterations in a row.

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.g_lr = 0.001  # G Adam learning rate before lazy-reg scaling (README --lr=0.001 -> 8e-4).
    config.optimizer.d_lr = 0.001  # D Adam learning rate before lazy-reg scaling (-> 9.4118e-4).
    config.optimizer.betas = (0.0, 0.99)  # Adam betas before scaling (beta ** c, c = I / (I + 1)).
    config.optimizer.eps = 1e-8  # Adam epsilon.
    config.optimizer.g_reg_interval = 4  # G lazy-reg interval: only scales G's Adam (MAT's G reg is disabled).
    config.optimizer.d_reg_interval = 16  # Lazy R1 every this many iterations; scales D's Adam and the R1 gain.
    # Official --lrt: G parameters whose official name contains 'tran'/'Tran' (the stage-1 transformer) get this
    # learning rate instead (before lazy-reg scaling, like g_lr); None = one learning rate, as the README command.
    config.optimizer.g_lr_transformer = ml_collections.config_dict.placeholder(float)

    config.loss = ml_collections.ConfigDict()
    config.loss.r1_gamma = 10.0  # R1 weight on both D branches (cfg places512 gamma).
    config.loss.pcp_ratio = 0.1  # Perceptual loss weight (README --pr=0.1); 0 = off (no VGG weights needed).
    config.loss.vgg_weights = ""  # torchvision vgg19 state_dict (.pth or .safetensors); required when pcp_ratio > 0.
    config.loss.style_mixing_prob = 0.5  # Style-mixing probability (README --style_mix=0.5).
    config.loss.truncation_psi = 0.5  # Training truncation towards w_avg (README --truncation=0.5).
    config.loss.l1_ratio = 0.0  # L1(output, real) weight; 0 = official (logged, not optimised).

    config.init = ml_collections.ConfigDict()  # Fine-tuning: weights loaded before step 0 of a *fresh* run.
    config.init.checkpoint = ""  # "" = random init. Else an official .pkl (G, D, G_ema), a .pt/.safetensors/.npz, a
    #                              mat-jax directory or another run's workdir; a resumed run ignores it.
    config.init.nets = ("G", "D", "G_ema")  # Nets to load; others keep the seed's init (G_ema = G if only G loads).
    config.init.step = ml_collections.config_dict.placeholder(int)  # Step of a run source (None = latest complete).

    config.ema = ml_collections.ConfigDict()
    config.ema.kimg = 10.0  # G_ema half-life in thousands of images (README --ema=10).
    config.ema.rampup = None  # None (MAT configs) or r: half-life <= images_seen * r.

    config.mesh = ml_collections.ConfigDict()
    config.mesh.num_devices = 0  # Use the first N devices of this process (single process only; 0 = all devices).
    config.mesh.fsdp = 1  # Devices per FSDP group sharding params + Adam state (1 = pure data parallel; -1 = all).
    config.mesh.fsdp_min_size = 16384  # Arrays smaller than this (elements) stay replicated under FSDP.

    config.checkpoint = ml_collections.ConfigDict()
    config.checkpoint.every_steps = 2000  # Save every this many iterations (and at the end and on SIGTERM).
    config.checkpoint.max_to_keep = 3  # Newest checkpoints kept in <workdir>/checkpoints.
    config.checkpoint.async_save = True  # Write in the background (the device->host copy still blocks).

    config.logging = ml_collections.ConfigDict()
    config.logging.log_every_steps = 100  # Scalars to TensorBoard / metrics.jsonl every this many iterations.
    config.logging.grid_every_steps = 2000  # Sample grid (G_ema, noise const) every this many iterations.
    config.logging.grid_size = 8  # Samples (rows) in the grid.
    config.logging.tensorboard = True  # Write TensorBoard events (tensorboardX) to <workdir>/tensorboard.
    config.logging.progress_bar = True  # tqdm progress bar with ETA on process 0.
    return config


def get_config():
    config = ml_collections.ConfigDict()
    config.model = model_config()
    config.data = data_config()
    return training_config(config)
