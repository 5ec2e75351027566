"""Random-access record sources for grain: image folders, TFDS (array_record), raw ArrayRecord files, mask folders,
and `DecodedSource`, which decodes records and applies the bad-data policy.

A *raw source* has `__len__`, `raw(i) -> (payload, key)` and a `name`; payload is a file path, encoded bytes or
a uint8 array, key names the record in error messages (a relative path when there is one). Raw sources are
cheap to pickle (grain sends the source to every worker process).

Bad-data policy (`bad_data`): "error" raises a BadImageError naming the file; "skip" logs the file once,
counts it, and substitutes the next good record (i+1, i+2, ... cyclically). Substitution instead of dropping
keeps the dataset length, every batch shape and the global element order fixed, so batches stay independent
of the worker count and resumable. Zero-byte files, truncated/corrupt files and non-images with an image
extension all surface as BadImageError at decode time. `verify_source` decodes everything up front when a
full report is wanted before training.

Class labels (class-conditional training, the official `--cond`): a labelled raw source has `num_classes > 0`
and `label(i) -> int` in [0, num_classes); unlabelled sources have `num_classes == 0`. Folders take labels from
a StyleGAN2-ADA `dataset.json` (`{"labels": [["relative/path.png", int], ...]}`) or from their first-level
sub-folders (sorted names, index = class id); TFDS from an integer feature. `DecodedSource` adds `"label"` to
each record (a substituted bad record brings its own label). ArrayRecord files and the demo photos carry none.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pathlib
from collections.abc import Sequence

import numpy as np
from absl import logging

from mat_jax.data import preprocess

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
BAD_DATA_POLICIES = ("skip", "error")
FOLDER_LABELS = ("none", "dataset_json", "subfolders")
DATASET_JSON = "dataset.json"


def default_cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MAT_JAX_CACHE", pathlib.Path.home() / ".cache" / "mat_jax"))


def _walk(root: pathlib.Path, extensions: Sequence[str]) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for f in filenames:
            if os.path.splitext(f)[1].lower() in extensions:
                found.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(found)


def list_files(
    root: str | os.PathLike,
    *,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    cache_dir: str | os.PathLike | None = None,
    refresh: bool = False,
) -> list[str]:
    """Sorted relative paths of all files under `root` (recursive) with one of `extensions` (case-insensitive).

    Why a cache: listing millions of files (Places365) on a network disk takes minutes, and every run and host
    would repeat it. With `cache_dir` the list is stored once as JSON keyed by the absolute root and reused
    while the root folder's mtime is unchanged; changes deep inside subfolders need `refresh=True`.
    """
    root_p = pathlib.Path(root).expanduser().resolve()
    if not root_p.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist or is not a directory")
    key = f"{root_p}|{','.join(sorted(extensions))}"
    cache_file = None
    if cache_dir is not None:
        cache_file = pathlib.Path(cache_dir) / f"filelist-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
        if cache_file.is_file() and not refresh:
            cached = json.loads(cache_file.read_text())
            if cached.get("key") == key and cached.get("root_mtime_ns") == root_p.stat().st_mtime_ns:
                return list(cached["files"])
    files = _walk(root_p, tuple(e.lower() for e in extensions))
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "root_mtime_ns": root_p.stat().st_mtime_ns, "files": files}))
        tmp.replace(cache_file)
    return files


def _norm_rel(path: str) -> str:
    return os.path.normpath(str(path).replace("\\", "/")).replace(os.sep, "/")


def dataset_json_labels(root: str | os.PathLike, files: Sequence[str]) -> np.ndarray:
    """Integer label [N] of every file (relative paths under `root`) from `root/dataset.json` (StyleGAN2-ADA).

    Every image needs a label and every labelled file must be one of the images: either mismatch raises a
    ValueError naming the file and dataset.json (a silently unlabelled or mis-paired image would train the wrong
    class).
    """
    path = pathlib.Path(root) / DATASET_JSON
    if not path.is_file():
        raise FileNotFoundError(
            f'data.labels=\'dataset_json\' needs {path} ({{"labels": [["rel/path.png", '
            "int], ...]}}, StyleGAN2-ADA layout); it does not exist"
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    entries = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(entries, list):
        raise ValueError(
            f'{path} has no "labels" list (StyleGAN2-ADA layout: {{"labels": [["rel/path.png", int], ...]}}}})'
        )
    known = {_norm_rel(f): i for i, f in enumerate(files)}
    labels = np.full(len(files), -1, np.int64)
    for entry in entries:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
            raise ValueError(f"{path}: every entry must be [relative path, int label], got {entry!r}")
        rel, label = entry
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
            raise ValueError(f"{path}: label of {rel!r} must be an integer >= 0, got {label!r}")
        i = known.get(_norm_rel(rel))
        if i is None:
            raise ValueError(f"{path} labels {rel!r}, which is not an image under {root} (unknown file)")
        labels[i] = int(label)
    missing = [files[i] for i in np.flatnonzero(labels < 0)]
    if missing:
        raise ValueError(
            f"{len(missing)} image(s) under {root} have no label in {path}, e.g. {missing[:3]}; "
            "every image needs one when data.labels='dataset_json'"
        )
    return labels


def subfolder_labels(files: Sequence[str], root: str = "") -> tuple[np.ndarray, list[str]]:
    """(label [N], class names): class = first-level sub-folder, classes sorted by name, index = class id."""
    top = [_norm_rel(f).split("/", 1) for f in files]
    loose = [f for f, parts in zip(files, top, strict=True) if len(parts) == 1]
    if loose:
        raise ValueError(
            f"data.labels='subfolders' needs every image inside a class sub-folder of {root}; "
            f"{len(loose)} lie directly in it, e.g. {loose[:3]}"
        )
    names = sorted({parts[0] for parts in top})
    index = {n: k for k, n in enumerate(names)}
    return np.asarray([index[parts[0]] for parts in top], np.int64), names


class ImageFolderSource:
    """All images under a folder (recursive; jpg/jpeg/png/webp/bmp), sorted by relative path.

    `labels`: "none" | "dataset_json" | "subfolders" (module docstring); num_classes = max label + 1.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        cache_dir: str | os.PathLike | None = None,
        refresh=False,
        labels: str = "none",
    ):
        if labels not in FOLDER_LABELS:
            raise ValueError(f"folder labels must be one of {FOLDER_LABELS}, got {labels!r}")
        self.root = str(pathlib.Path(root).expanduser().resolve())
        self.files = list_files(self.root, cache_dir=cache_dir, refresh=refresh)
        if not self.files:
            raise ValueError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root} (searched recursively); "
                "check the data path before training"
            )
        self.name = f"folder:{self.root}"
        self.labels: np.ndarray | None = None
        self.class_names: list[str] | None = None
        if labels == "dataset_json":
            self.labels = dataset_json_labels(self.root, self.files)
        elif labels == "subfolders":
            self.labels, self.class_names = subfolder_labels(self.files, self.root)
        self.num_classes = 0 if self.labels is None else int(self.labels.max()) + 1

    def __len__(self) -> int:
        return len(self.files)

    def raw(self, i: int):
        return os.path.join(self.root, self.files[i]), self.files[i]

    def label(self, i: int) -> int:
        if self.labels is None:
            raise ValueError(f"{self.name} is not labelled (labels='none')")
        return int(self.labels[i])


class ArrayRecordImageSource:
    """ArrayRecord files whose records are encoded image bytes (one image per record, see `write_array_record`)."""

    def __init__(self, paths: str | Sequence[str]):
        import grain

        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        expanded = []
        for p in paths:
            matches = sorted(glob.glob(os.fspath(p))) if any(c in os.fspath(p) for c in "*?[") else [os.fspath(p)]
            if not matches:
                raise FileNotFoundError(f"no ArrayRecord files match {p}")
            expanded += matches
        for p in expanded:
            if not pathlib.Path(p).is_file():
                raise FileNotFoundError(f"ArrayRecord file {p} does not exist")
        self.paths = expanded
        self._ds = grain.sources.ArrayRecordDataSource(expanded)
        if len(self._ds) == 0:
            raise ValueError(f"ArrayRecord files {expanded} contain no records")
        self.name = f"array_record:{','.join(expanded)}"

        self.num_classes = 0  # encoded image bytes only: no labels

    def __len__(self) -> int:
        return len(self._ds)

    def raw(self, i: int):
        return self._ds[i], f"{self.name}#{i}"


def write_array_record(files: Sequence[str | os.PathLike], out_path: str | os.PathLike) -> int:
    """Store the bytes of image files (not re-encoded) as one ArrayRecord file; returns the record count."""
    from array_record.python.array_record_module import ArrayRecordWriter

    writer = ArrayRecordWriter(str(out_path), "group_size:1")
    try:
        for f in files:
            writer.write(pathlib.Path(f).read_bytes())
    finally:
        writer.close()
    return len(files)


class TfdsSource:
    """A TFDS dataset prepared in array_record format, read through `tfds.data_source` (no TensorFlow).

    `label_key`: an integer feature holding the class (None = unlabelled). num_classes comes from the feature
    (e.g. tfds.features.ClassLabel) when it declares one, else max label + 1 over all records (one full pass).
    """

    def __init__(
        self,
        name: str,
        *,
        split: str = "train",
        data_dir: str | None = None,
        image_key="image",
        label_key: str | None = None,
    ):
        import tensorflow_datasets as tfds

        try:
            self._ds = tfds.data_source(name, split=split, data_dir=data_dir)
        except Exception as e:  # tfds raises many types (DatasetNotFoundError, AssertionError, ...)
            raise FileNotFoundError(
                f"cannot open TFDS dataset {name!r} split {split!r} in data_dir {data_dir!r}: {e}. "
                "Prepare it first (mat_jax.data.tfds_builder.prepare_image_folder)"
            ) from e
        if len(self._ds) == 0:
            raise ValueError(f"TFDS dataset {name!r} split {split!r} is empty")
        self.image_key = image_key
        self.name = f"tfds:{name}[{split}]"
        self.label_key = label_key
        self.num_classes = 0 if label_key is None else self._num_classes(label_key)

    def _num_classes(self, key: str) -> int:
        features = getattr(getattr(self._ds, "dataset_info", None), "features", None)
        feature = None
        if features is not None:
            try:
                feature = features[key]
            except (KeyError, TypeError):
                names = sorted(features.keys()) if hasattr(features, "keys") else "?"
                raise KeyError(f"{self.name} has no feature {key!r} (data.label_key); features: {names}") from None
        n = getattr(feature, "num_classes", None)
        if n:
            return int(n)
        logging.info("%s: feature %r declares no num_classes; reading every record for max label + 1", self.name, key)
        return max(self.label(i) for i in range(len(self))) + 1

    def label(self, i: int) -> int:
        rec = self._ds[i]
        if self.label_key not in rec:
            raise KeyError(
                f"{self.name} records have no feature {self.label_key!r} (data.label_key); features: {sorted(rec)}"
            )
        value = np.asarray(rec[self.label_key])
        if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer) or int(value) < 0:
            raise ValueError(
                f"{self.name} record {i}: feature {self.label_key!r} must be an integer >= 0, got {value!r}"
            )
        return int(value)

    def __len__(self) -> int:
        return len(self._ds)

    def raw(self, i: int):
        rec = self._ds[i]
        if self.image_key not in rec:
            raise KeyError(f"{self.name} records have no feature {self.image_key!r}; features: {sorted(rec)}")
        key = rec.get("path", b"")
        key = key.decode() if isinstance(key, bytes) else str(key)
        return rec[self.image_key], key or f"{self.name}#{i}"


class MaskFolderSource:
    """Mask files (e.g. the official evaluation masks) in a folder, sorted by relative path."""

    def __init__(self, root: str | os.PathLike, *, cache_dir=None, refresh=False):
        self.root = str(pathlib.Path(root).expanduser().resolve())
        self.files = list_files(self.root, extensions=MASK_EXTENSIONS, cache_dir=cache_dir, refresh=refresh)
        if not self.files:
            raise ValueError(f"no mask files ({', '.join(MASK_EXTENSIONS)}) found under {root}")

    def __len__(self) -> int:
        return len(self.files)

    def path(self, i: int) -> str:
        return os.path.join(self.root, self.files[i])


def pair_masks(image_keys: Sequence[str], masks: MaskFolderSource, by: str = "sorted") -> list[str]:
    """Mask file for every image. `by="sorted"`: position in sorted order (official; counts must match).
    `by="name"`: same relative path without extension (e.g. `a/x.jpg` <-> `a/x.png`); missing masks raise."""
    if by == "sorted":
        if len(image_keys) != len(masks):
            raise ValueError(
                f"{len(image_keys)} images but {len(masks)} masks in {masks.root}; pairing by sorted order needs "
                "equal counts (or use pairing by name)"
            )
        return [masks.path(i) for i in range(len(masks))]
    if by == "name":
        stems = {os.path.splitext(f)[0]: i for i, f in enumerate(masks.files)}
        missing = [k for k in image_keys if os.path.splitext(k)[0] not in stems]
        if missing:
            raise ValueError(f"{len(missing)} images have no mask of the same name in {masks.root}, e.g. {missing[:3]}")
        return [masks.path(stems[os.path.splitext(k)[0]]) for k in image_keys]
    raise ValueError(f"mask pairing must be 'sorted' or 'name', got {by!r}")


class DecodedSource:
    """Decodes raw records to `{"image": [H, W, 3] uint8, "key": str, "index": int, "mask_file": str}`
    (+ `"label": int` when the raw source is labelled, num_classes > 0) under the bad-data policy (module
    docstring). `bad` maps each skipped key to its reason (this process).

    `mask_files` (one per raw record) pairs file masks with images; a substituted record brings its own mask.
    """

    def __init__(self, raw_source, *, bad_data: str = "skip", mask_files: Sequence[str] | None = None):
        if bad_data not in BAD_DATA_POLICIES:
            raise ValueError(f"bad_data must be one of {BAD_DATA_POLICIES}, got {bad_data!r}")
        if mask_files is not None and len(mask_files) != len(raw_source):
            raise ValueError(f"{len(mask_files)} mask files for {len(raw_source)} images of {raw_source.name}")
        self.raw_source = raw_source
        self.bad_data = bad_data
        self.mask_files = list(mask_files) if mask_files is not None else None
        self.bad: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.raw_source)

    @property
    def num_classes(self) -> int:
        return int(getattr(self.raw_source, "num_classes", 0))

    def _decode(self, i: int) -> dict:
        payload, key = self.raw_source.raw(i)
        if isinstance(payload, np.ndarray):
            image = preprocess.as_rgb_uint8(payload, where=key)
        else:
            where = payload if isinstance(payload, str) else key  # full path in logs when there is one
            image = preprocess.decode_image(payload, where=where)
        mask_file = self.mask_files[i] if self.mask_files is not None else ""
        out = {"image": image, "key": key, "index": i, "mask_file": mask_file}
        if self.num_classes > 0:
            out["label"] = self.raw_source.label(i)
        return out

    def __getitem__(self, i: int) -> dict:
        n = len(self)
        i = int(i) % n
        for attempt in range(n):
            j = (i + attempt) % n
            try:
                return self._decode(j)
            except preprocess.BadImageError as e:
                if self.bad_data == "error":
                    raise
                if e.where not in self.bad:
                    self.bad[e.where] = e.reason
                    logging.warning("skipping bad image %s (%s); %d skipped so far", e.where, e.reason, len(self.bad))
        raise ValueError(f"every record of {self.raw_source.name} failed to decode; first errors: {self.bad}")


def verify_source(raw_source, *, progress: bool = True) -> dict[str, str]:
    """Decode every record once; returns {key: reason} of the bad ones (empty when all are good)."""
    from tqdm import tqdm

    probe = DecodedSource(raw_source, bad_data="error")
    bad = {}
    for i in tqdm(range(len(probe)), desc=f"verify {raw_source.name}", disable=not progress):
        try:
            probe._decode(i)
        except preprocess.BadImageError as e:
            bad[e.where] = e.reason
    return bad
