"""The documented Python entry point: official-layout weights + NHWC images/masks -> inpainting.

    from mat_jax import inference
    inp = inference.Inpainter.from_official(state_dict)          # {official name: array}
    final, stage1 = inp(images, masks, seed=0)                  # [B,R,R,3] in [-1,1]
    final, stage1 = inp(images, masks, c=inference.one_hot([3, 3], inp.cfg.c_dim))  # class-conditional model

Conventions: images [B, H, W, 3] float in [-1, 1]; masks [B, H, W, 1] with **1 = known pixel,
0 = hole** (official MAT). H and W are the model resolution R, or multiples of it (as the official
code allows: the windows keep their trained size, the style-manipulation noise is interpolated, and
const noise is unavailable, so noise_mode must then be 'random' or 'none'). Inputs are validated on the host
(clear `ValueError`s naming the argument) before the jit-compiled forward runs; the forward is
compiled once per (config, batch size, psi, noise mode, smm mode) and never retraces for new
images, masks, latents or maps.

Official fractional-mask behaviour: a mask value strictly between 0 and 1 is NOT thresholded by
the official model; it enters the attention logits as a raw additive value, gives fractional
partial-conv ratios and blends the ground truth into the hole. `binarize_mask=True` thresholds at
0.5 first (recommended for real use); the default keeps the official semantics and warns.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from mat_jax.models import Generator, MATConfig
from mat_jax.models.generator import smm_shapes
from mat_jax.weights.layout import official_to_variables

NOISE_MODES = ("const", "random", "none")


def one_hot(labels: Any, c_dim: int) -> np.ndarray:
    """Integer class labels [B] (or one int) -> [B, c_dim] float32 one-hot, the `c` of a conditional model
    (StyleGAN2-ADA layout). A label outside [0, c_dim) is a ValueError."""
    labels = np.atleast_1d(np.asarray(labels))
    if c_dim < 1:
        raise ValueError(f"one_hot needs c_dim >= 1 (a class-conditional model), got c_dim={c_dim}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers [B], got {labels.dtype} of shape {labels.shape}")
    bad = labels[(labels < 0) | (labels >= c_dim)]
    if bad.size:
        raise ValueError(f"label {int(bad[0])} is outside [0, {c_dim}) (c_dim={c_dim} classes)")
    out = np.zeros((labels.shape[0], c_dim), np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def validate_c(c: Any, cfg: MATConfig, batch: int):
    """Check the class conditioning `c` of a batch: [B, c_dim] finite floats for a conditional model (required),
    None for an unconditional one. Returns float32 numpy or None."""
    if cfg.c_dim == 0:
        if c is not None:
            raise ValueError("c was given but this model is unconditional (c_dim=0); pass c=None")
        return None
    if c is None:
        raise ValueError(
            f"this model is class-conditional (c_dim={cfg.c_dim}): pass c [B, {cfg.c_dim}] "
            "(e.g. inference.one_hot(labels, c_dim))"
        )
    c = np.asarray(c)
    if c.shape != (batch, cfg.c_dim):
        raise ValueError(f"c must be [B, c_dim] = [{batch}, {cfg.c_dim}], got {c.shape}")
    if not np.issubdtype(c.dtype, np.number) or not np.all(np.isfinite(c)):
        raise ValueError("c must hold finite numbers (one-hot class labels)")
    return c.astype(np.float32)


def validate_inputs(images: Any, masks: Any, cfg: MATConfig, z: Any = None, binarize_mask: bool = False):
    """Check shapes, ranges and finiteness on the host; return float32 numpy (images, masks)."""
    images = np.asarray(images)
    masks = np.asarray(masks)
    r = cfg.resolution
    if images.ndim != 4 or images.shape[-1] != cfg.img_channels:
        raise ValueError(f"images must be [B, H, W, {cfg.img_channels}] (NHWC), got shape {images.shape}")
    b, h, w, _ = images.shape
    if h % r or w % r or h == 0 or w == 0:
        raise ValueError(
            f"images are {h}x{w} (HxW) but the network needs each side to be a multiple of its resolution {r} "
            f"(as the official model); pad or resize first (`mat-jax inpaint` pads for you)"
        )
    if masks.ndim == 3:
        masks = masks[..., None]
    if masks.ndim != 4 or masks.shape[-1] != 1:
        raise ValueError(f"masks must be [B, H, W, 1] (1 = known, 0 = hole), got shape {masks.shape}")
    if masks.shape[:3] != (b, h, w):
        raise ValueError(f"masks shape {masks.shape} does not match images shape {images.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be floating point in [-1, 1], got dtype {images.dtype}")
    if not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or Inf values")
    if not np.all(np.isfinite(masks)):
        raise ValueError("masks contain NaN or Inf values")
    if masks.min() < 0 or masks.max() > 1:
        raise ValueError(f"masks must lie in [0, 1] (1 = known, 0 = hole); found [{masks.min()}, {masks.max()}]")
    if binarize_mask:
        masks = (masks >= 0.5).astype(np.float32)
    elif not np.all((masks == 0) | (masks == 1)):
        warnings.warn(
            "masks are not binary: the official model does not threshold them (fractional values leak into "
            "attention and blend the input into holes); pass binarize_mask=True to threshold at 0.5",
            stacklevel=3,
        )
    if z is not None:
        z = np.asarray(z)
        if z.shape != (b, cfg.z_dim):
            raise ValueError(f"z must be [B, {cfg.z_dim}] = [{b}, {cfg.z_dim}], got {z.shape}")
        if not np.all(np.isfinite(z)):
            raise ValueError("z contains NaN or Inf values")
    return images.astype(np.float32), masks.astype(np.float32)


@functools.partial(jax.jit, static_argnames=("cfg", "truncation_psi", "noise_mode", "smm_mode"))
def generate(
    variables,
    images,
    masks,
    z,
    key,
    smm_maps=None,
    c=None,
    *,
    cfg: MATConfig,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    smm_mode: str = "random",
):
    """Jitted G forward: returns (final [B,R,R,3], stage1 [B,R,R,3]). smm_mode: 'random' (maps from
    `key`), 'ones' (deterministic), 'given' (`smm_maps` = (stage-1 map, stage-2 map)). c: [B, c_dim] class
    conditioning of a conditional model (None when c_dim = 0)."""
    k_smm, k_noise = jax.random.split(key)
    if smm_mode == "ones":
        smm_maps = "ones"
    elif smm_mode == "random":
        smm_maps = None
    g = Generator(cfg)
    ws = g.apply(variables, z, c, truncation_psi, method=Generator.map)
    final, stage1, _ = g.apply(
        variables,
        images,
        masks,
        ws,
        noise_mode,
        smm_maps,
        method=Generator.synthesize,
        rngs={"smm": k_smm, "noise": k_noise},
    )
    return final, stage1


@functools.partial(jax.jit, static_argnames=("cfg", "truncation_psi", "noise_mode", "smm_mode"))
def generate_per_sample(
    variables,
    images,
    masks,
    z,
    keys,
    c=None,
    *,
    cfg: MATConfig,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    smm_mode: str = "random",
):
    """`generate` with one PRNG key per sample (keys [B]): sample i's style maps and noise come from keys[i] alone,
    drawn as a batch-1 `generate` draws them, so a sample's fill does not depend on the rest of the batch. One
    batched forward (vmap), compiled per batch size like `generate`."""

    def one(image_HxWx3, mask_HxWx1, z_Z, key, c_C):
        final, stage1 = generate(
            variables,
            image_HxWx3[None],
            mask_HxWx1[None],
            z_Z[None],
            key,
            None,
            None if c_C is None else c_C[None],
            cfg=cfg,
            truncation_psi=truncation_psi,
            noise_mode=noise_mode,
            smm_mode=smm_mode,
        )
        return final[0], stage1[0]

    return jax.vmap(one)(images, masks, z, keys, c)


def seed_latents(seeds, z_dim: int) -> np.ndarray:
    """[B, z_dim] float32: row i is the z a batch-1 call with seed=seeds[i] draws, so per-sample seeds reproduce
    single-image runs."""
    rows = [jax.random.normal(jax.random.fold_in(jax.random.key(s), 1), (1, z_dim))[0] for s in seeds]
    return np.stack([np.asarray(r, np.float32) for r in rows])


def label_condition(label: int | None, c_dim: int, source: str = "the checkpoint", name: str = "--label"):
    """[1, c_dim] one-hot c of a class label (None for an unconditional model); ValueError when the label is
    missing for a conditional model, given for an unconditional one, or outside [0, c_dim). `name`: how the caller
    calls the label in messages (the `--label` flag, the server's `label` field)."""
    if c_dim == 0:
        if label is not None:
            raise ValueError(f"{name} {label}: {source} is unconditional (c_dim=0); drop {name}")
        return None
    if label is None:
        raise ValueError(f"{source} is class-conditional (c_dim={c_dim}): pass {name} N with N in [0, {c_dim})")
    return one_hot([label], c_dim)


@dataclasses.dataclass
class Inpainter:
    """A loaded generator (config + Flax variables) callable on batches of images and masks."""

    cfg: MATConfig
    variables: Mapping[str, Any]
    source: str = ""  # what the weights were read from, for messages (e.g. "G_ema of runs/demo (step 500), ...")

    @classmethod
    def from_official(
        cls, state_dict: Mapping[str, Any], cfg: MATConfig | None = None, source: str = "weights"
    ) -> "Inpainter":
        """From official-layout arrays {name: array}; the resolution is read off the keys if cfg is None."""
        if cfg is None:
            from mat_jax.convert.nets import infer_layout

            net, res = infer_layout(state_dict, source)
            if net != "G":
                raise ValueError(f"{source}: holds a {net}, not a generator")
            cfg = MATConfig(resolution=res)
        variables = official_to_variables(state_dict, cfg, "G", source=source)
        return cls(cfg, jax.tree.map(jnp.asarray, variables))

    def __call__(
        self,
        images,
        masks,
        z=None,
        *,
        c=None,
        seed: int = 0,
        seeds=None,
        truncation_psi: float = 1.0,
        noise_mode: str = "const",
        smm_maps=None,
        binarize_mask: bool = False,
    ):
        """Inpaint a batch. z: [B, z_dim] or None (drawn from `seed`). c: [B, c_dim] class conditioning
        (one-hot, see `one_hot`), required when cfg.c_dim > 0, None otherwise. smm_maps: None (random, from
        `seed`), 'ones', or (stage-1 [B, L_mid, dim], stage-2 [B,16,16,C]) {0,1} maps. seeds: B ints instead
        of `seed`, one per sample (pluralistic variants): sample i (its z when z is None, style maps, noise) is what
        a batch-1 call with seed=seeds[i] draws, whatever else is in the batch; smm_maps must then be None or 'ones'.
        Returns (final, stage1) as numpy float32 [B,R,R,3] in roughly [-1, 1]."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        images, masks = validate_inputs(images, masks, self.cfg, z, binarize_mask)
        b, h, w = images.shape[:3]
        c = validate_c(c, self.cfg, b)
        if noise_mode == "const" and (h, w) != (self.cfg.resolution,) * 2:
            raise ValueError(
                f"noise_mode='const' needs {self.cfg.resolution}x{self.cfg.resolution} images (the "
                f"noise_const buffers have the trained size); got {h}x{w}: use 'random' or 'none'"
            )
        if seeds is not None:
            return self._per_sample(images, masks, z, c, seeds, float(truncation_psi), noise_mode, smm_maps)
        key = jax.random.key(seed)
        if z is None:
            z = jax.random.normal(jax.random.fold_in(key, 1), (b, self.cfg.z_dim))
        smm_mode = "random"
        if isinstance(smm_maps, str):
            if smm_maps != "ones":
                raise ValueError(f"smm_maps must be None, 'ones' or a pair of arrays, got {smm_maps!r}")
            smm_mode, smm_maps = "ones", None
        elif smm_maps is not None:
            smm_mode = "given"
            smm_maps = tuple(np.asarray(m, np.float32) for m in smm_maps)
            want = smm_shapes(self.cfg, b, (h, w))
            if len(smm_maps) != 2 or tuple(smm_maps[0].shape) != want[0] or tuple(smm_maps[1].shape) != want[1]:
                raise ValueError(f"smm_maps must have shapes {want}, got {[m.shape for m in smm_maps]}")
        final, stage1 = generate(
            self.variables,
            images,
            masks,
            jnp.asarray(z, jnp.float32),
            key,
            smm_maps,
            c,
            cfg=self.cfg,
            truncation_psi=float(truncation_psi),
            noise_mode=noise_mode,
            smm_mode=smm_mode,
        )
        return np.asarray(final), np.asarray(stage1)

    def _per_sample(self, images, masks, z, c, seeds, truncation_psi: float, noise_mode: str, smm_maps):
        b = images.shape[0]
        seeds = [int(s) for s in seeds]
        if len(seeds) != b:
            raise ValueError(f"seeds must hold one int per sample ({b}), got {len(seeds)}")
        if smm_maps is not None and not (isinstance(smm_maps, str) and smm_maps == "ones"):
            raise ValueError("with per-sample seeds, smm_maps must be None (random, from each seed) or 'ones'")
        if z is None:
            z = seed_latents(seeds, self.cfg.z_dim)
        keys = jnp.stack([jax.random.key(s) for s in seeds])
        final, stage1 = generate_per_sample(
            self.variables,
            images,
            masks,
            jnp.asarray(z, jnp.float32),
            keys,
            None if c is None else jnp.asarray(c),
            cfg=self.cfg,
            truncation_psi=truncation_psi,
            noise_mode=noise_mode,
            smm_mode="random" if smm_maps is None else "ones",
        )
        return np.asarray(final), np.asarray(stage1)


def inpaint(weights: Mapping[str, Any], images, masks, z=None, **kwargs):
    """One-shot convenience: `Inpainter.from_official(weights)(images, masks, z, **kwargs)`."""
    return Inpainter.from_official(weights)(images, masks, z, **kwargs)
