"""The grain input pipeline: source -> shuffle (seeded, reshuffled every epoch) -> repeat -> decode / crop /
flip / mask -> per-host shard -> batch -> iterator (optionally with multiprocess prefetch).

Batches: `{"image": [b, R, R, 3] float32 (or bf16) in [-1, 1], "mask": [b, R, R, 1] float32, 1 = known,
0 = hole}` (+ `"label": [b, C] float32` one-hot class labels when `labels != "none"`, C = `num_classes(cfg)`;
+ `"index": [b] int64`, the source record used, when `return_index`), b = per-process batch. Labels travel with
their record through shuffling, sharding and batching, exactly like "image" and "mask".

Determinism and why the order of operations is what it is:
* Crops, flips and generated masks depend only on (seed, position in the global shuffled stream), drawn from
  per-record RNGs (`masks_extra.record_seed`), never from a global RNG. Shuffling and augmentation happen
  *before* the per-host shard, so host p of n takes positions p, p+n, p+2n, ...: hosts are disjoint, and the
  union of the hosts' batch k is exactly the single-host global batch k whatever the process count.
* Batching happens on the MapDataset (before `to_iter_dataset` / `mp_prefetch`), so batch composition does not
  depend on the number of workers (batching after mp_prefetch would batch each worker's slice separately).
* The iterator's `get_state()/set_state()` (and grain.checkpoint.CheckpointSave/Restore in orbax) resume the
  exact remaining stream. Saved states are per process and not portable across worker/process counts.

Entry points that use workers must parse absl flags first (`flags.FLAGS.mark_as_parsed()`): grain workers read
an absl flag at start-up and crash otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mat_jax.data import demo_data, mask_io, masks_extra, preprocess, sources

SOURCES = ("folder", "tfds", "array_record", "demo")
LABELS = ("none", "dataset_json", "subfolders", "tfds")
LABELS_OF_SOURCE = {
    "folder": ("none", "dataset_json", "subfolders"),
    "tfds": ("none", "tfds"),
    "array_record": ("none",),
    "demo": ("none",),
}


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input pipeline settings. Field names match `cfg.data.*` in the ml_collections configs (`from_config`)."""

    source: str = "folder"  # folder | tfds | array_record | demo
    path: str = ""  # folder root, TFDS name (e.g. "mat_image_folder/places"), or ArrayRecord file/glob
    split: str = "train"  # TFDS split
    tfds_data_dir: str | None = None  # TFDS data_dir (None = TFDS default)
    image_key: str = "image"  # TFDS feature holding the image
    resolution: int = 512  # output side R (square crops)
    crop: str = "official"  # see preprocess.CROPS; "official" = reflect-pad small sides + random crop
    small_images: str = "reflect_pad"  # reflect_pad (official) | resize | error, for non-resizing crops
    flip: bool = True  # random horizontal flip (p = 0.5)
    mask_kind: str = "mat_large"  # see masks_extra.ALL_KINDS; ignored when mask_path is set
    hole_range: tuple[float, float] = (0.0, 1.0)  # rejection interval of the MAT generators
    mask_path: str | None = None  # folder of mask files (e.g. the official eval masks) instead of generated masks
    mask_pairing: str = "sorted"  # sorted (by position, official) | name
    mask_convention: str = "mat"  # mask files: mat (white = known) | lama (white = hole)
    binarize_mask: bool = False  # threshold mask files at 0.5 (official: no thresholding)
    dtype: str = "float32"  # image dtype: float32 | bfloat16
    bad_data: str = "skip"  # skip (log + substitute the next good record) | error
    shuffle: bool = True  # seeded shuffle, reshuffled every epoch
    num_epochs: int | None = None  # None = repeat forever (training); 1 for evaluation
    drop_remainder: bool = True  # drop the last incomplete batch of a finite stream
    num_workers: int = 0  # grain worker processes (0 = decode in this process with threads)
    per_worker_buffer_size: int = 2  # batches buffered per worker
    read_threads: int = 2  # decode threads per process (grain ReadOptions.num_threads)
    prefetch_batches: int = 2  # batches prefetched per process (grain ReadOptions.prefetch_buffer_size)
    file_list_cache: str | None = None  # folder for cached file lists (None = no cache)
    demo_repeats: int = 1  # demo source: repeat the photo list this many times per epoch
    return_index: bool = False  # also yield "index" (source record of each example), for debugging
    labels: str = "none"  # class labels: none (unconditional) | dataset_json | subfolders (folder) | tfds
    label_key: str = "label"  # TFDS integer feature holding the class (labels="tfds")

    def __post_init__(self):
        checks = {
            "source": (self.source, SOURCES),
            "crop": (self.crop, preprocess.CROPS),
            "small_images": (self.small_images, preprocess.SMALL_IMAGE_POLICIES),
            "mask_kind": (self.mask_kind, masks_extra.ALL_KINDS),
            "mask_pairing": (self.mask_pairing, ("sorted", "name")),
            "mask_convention": (self.mask_convention, ("mat", "lama")),
            "dtype": (self.dtype, preprocess.DTYPES),
            "bad_data": (self.bad_data, sources.BAD_DATA_POLICIES),
            "labels": (self.labels, LABELS),
        }
        for field, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"data.{field}={value!r} is not one of {tuple(allowed)}")
        if self.resolution < 8:
            raise ValueError(f"data.resolution must be >= 8, got {self.resolution}")
        if self.source != "demo" and not self.path:
            raise ValueError(f"data.path is required for data.source={self.source!r}")
        if self.labels not in LABELS_OF_SOURCE[self.source]:
            if len(LABELS_OF_SOURCE[self.source]) == 1:
                raise ValueError(
                    f"data.labels={self.labels!r}: data.source={self.source!r} carries no labels; use "
                    "a labelled folder (dataset.json or class sub-folders) or TFDS, or data.labels='none'"
                )
            raise ValueError(
                f"data.labels={self.labels!r} does not apply to data.source={self.source!r}; use one "
                f"of {LABELS_OF_SOURCE[self.source]}"
            )
        object.__setattr__(self, "hole_range", tuple(float(x) for x in self.hole_range))


def from_config(cfg_data: Any) -> DataConfig:
    """DataConfig from an ml_collections ConfigDict (or any mapping) with the same field names.

    Unknown keys raise (a typo in a config must not silently fall back to a default); missing keys take the
    DataConfig defaults.
    """
    items = dict(cfg_data.items()) if hasattr(cfg_data, "items") else dict(cfg_data)
    known = {f.name for f in dataclasses.fields(DataConfig)}
    unknown = sorted(set(items) - known)
    if unknown:
        raise ValueError(f"unknown data config keys {unknown}; known keys: {sorted(known)}")
    return DataConfig(**items)


def eval_config(cfg: DataConfig, **overrides) -> DataConfig:
    """The evaluation variant of a training config (as the official *_val datasets): center crop, no flip,
    no shuffle, one pass, last partial batch kept. Masks stay per-record seeded (or come from `mask_path`)."""
    base = dict(crop="center", flip=False, shuffle=False, num_epochs=1, drop_remainder=False)
    return dataclasses.replace(cfg, **{**base, **overrides})


def build_raw_source(cfg: DataConfig):
    """The raw source (sources.py protocol) named by `cfg.source` / `cfg.path`."""
    if cfg.source == "folder":
        return sources.ImageFolderSource(cfg.path, cache_dir=cfg.file_list_cache, labels=cfg.labels)
    if cfg.source == "tfds":
        return sources.TfdsSource(
            cfg.path,
            split=cfg.split,
            data_dir=cfg.tfds_data_dir,
            image_key=cfg.image_key,
            label_key=cfg.label_key if cfg.labels == "tfds" else None,
        )
    if cfg.source == "array_record":
        return sources.ArrayRecordImageSource(cfg.path)
    return demo_data.DemoSource(repeats=cfg.demo_repeats)


def num_classes(cfg: DataConfig) -> int:
    """Size of the one-hot labels the pipeline yields (= the model's c_dim): 0 when cfg.labels == "none", else
    max label + 1 (TFDS: the feature's num_classes when it declares one). Builds the raw source to read them."""
    if cfg.labels == "none":
        return 0
    return int(build_raw_source(cfg).num_classes)


def one_hot(label: int, n: int) -> np.ndarray:
    """[n] float32 one-hot of an integer label in [0, n) (StyleGAN2-ADA `get_label`)."""
    if not 0 <= int(label) < n:
        raise ValueError(f"label {label} is outside [0, {n})")
    out = np.zeros((n,), np.float32)
    out[int(label)] = 1.0
    return out


def build_source(cfg: DataConfig) -> sources.DecodedSource:
    """Decoded source with the bad-data policy and, when `cfg.mask_path` is set, the paired mask files."""
    raw = build_raw_source(cfg)
    mask_files = None
    if cfg.mask_path:
        mask_src = sources.MaskFolderSource(cfg.mask_path, cache_dir=cfg.file_list_cache)
        if cfg.mask_pairing == "name":
            keys = [raw.raw(i)[1] for i in range(len(raw))]  # folder: no I/O; TFDS: reads every record once
        else:
            keys = [""] * len(raw)
        mask_files = sources.pair_masks(keys, mask_src, by=cfg.mask_pairing)
    return sources.DecodedSource(raw, bad_data=cfg.bad_data, mask_files=mask_files)


class RecordTransform:
    """decode output -> {"image": [R, R, 3] in [-1, 1], "mask": [R, R, 1] (1 = known)} (+ "label": [C] one-hot
    float32 when `num_classes` > 0) for stream position `index`. A plain class (not a closure) so grain can pickle
    it to workers cheaply."""

    def __init__(self, cfg: DataConfig, seed: int, num_classes: int = 0):
        self.cfg = cfg
        self.seed = int(seed)
        self.num_classes = int(num_classes)

    def __call__(self, index: int, record: dict) -> dict:
        image, mask = self.image_and_mask(index, record)
        out = {"image": preprocess.to_model_range(image, self.cfg.dtype), "mask": mask}  # [R, R, 3], [R, R, 1]
        if self.num_classes > 0:
            out["label"] = one_hot(record["label"], self.num_classes)  # [C]
        if self.cfg.return_index:
            out["index"] = np.int64(record["index"])
        return out

    def image_and_mask(self, index: int, record: dict) -> tuple[np.ndarray, np.ndarray]:
        """(image [R, R, 3] uint8 after crop and flip, mask [R, R, 1] float32, 1 = known) of stream position
        `index`: what `__call__` returns before the range conversion (the evaluation reads the uint8 pixels)."""
        cfg = self.cfg
        rng = np.random.default_rng(masks_extra.record_seed(self.seed, index, stream=1))
        image = preprocess.crop_image(
            record["image"], cfg.resolution, rng, crop=cfg.crop, small_images=cfg.small_images, where=record["key"]
        )  # [R, R, 3] uint8
        if cfg.flip and rng.random() < 0.5:
            image = image[:, ::-1]
        if record["mask_file"]:
            mask = mask_io.load_mask(
                record["mask_file"],
                convention=cfg.mask_convention,
                binarize=cfg.binarize_mask,
                expected_size=cfg.resolution,
            )
        else:
            mask = masks_extra.make_mask(cfg.mask_kind, cfg.resolution, self.seed, index, hole_range=cfg.hole_range)
        return image, mask


def make_dataset(
    cfg: DataConfig,
    *,
    seed: int,
    batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    source: sources.DecodedSource | None = None,
):
    """The per-process grain MapDataset of batches (random access: `ds[k]` is batch k of this process).

    `batch_size` is the per-process batch. `source` lets a caller reuse an already built source.
    """
    import grain

    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} is not in [0, process_count={process_count})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    source = source if source is not None else build_source(cfg)
    ds = grain.MapDataset.source(source)
    if cfg.shuffle:
        ds = ds.shuffle(seed=seed)
    ds = ds.repeat(cfg.num_epochs)
    n_classes = source.num_classes if cfg.labels != "none" else 0
    if cfg.labels != "none" and n_classes == 0:
        raise ValueError(f"data.labels={cfg.labels!r} but {source.raw_source.name} yields no labels")
    ds = ds.map_with_index(RecordTransform(cfg, seed, n_classes))
    if process_count > 1:
        ds = ds[process_index::process_count]
    return ds.batch(batch_size, drop_remainder=cfg.drop_remainder)


def to_iter_dataset(ds, cfg: DataConfig, num_workers: int | None = None):
    """MapDataset of batches -> IterDataset, with `mp_prefetch` over `num_workers` processes when > 0."""
    import grain

    workers = cfg.num_workers if num_workers is None else num_workers
    it_ds = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=cfg.read_threads, prefetch_buffer_size=cfg.prefetch_batches)
    )
    if workers > 0:
        it_ds = it_ds.mp_prefetch(
            grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=cfg.per_worker_buffer_size)
        )
    return it_ds


def make_train_iterator(
    cfg_data: Any,
    *,
    seed: int,
    global_batch_size: int,
    process_index: int | None = None,
    process_count: int | None = None,
    num_workers: int | None = None,
):
    """(iterator, dataset) for training. `cfg_data` is a DataConfig or a ConfigDict with its field names.

    The iterator yields the process's slice of each global batch (`global_batch_size // process_count`
    examples) and supports `get_state()/set_state()` and grain.checkpoint.CheckpointSave/Restore.
    process_index / process_count default to jax.process_index() / jax.process_count().
    """
    cfg = cfg_data if isinstance(cfg_data, DataConfig) else from_config(cfg_data)
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if global_batch_size % process_count:
        raise ValueError(f"global_batch_size={global_batch_size} is not divisible by process_count={process_count}")
    ds = make_dataset(
        cfg,
        seed=seed,
        batch_size=global_batch_size // process_count,
        process_index=process_index,
        process_count=process_count,
    )
    it_ds = to_iter_dataset(ds, cfg, num_workers)
    return iter(it_ds), it_ds
