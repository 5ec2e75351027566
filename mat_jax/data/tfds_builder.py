"""Turn a user's image folders into a TFDS dataset in array_record format, without TensorFlow.

Why: MAT trains on Places365-Challenge / CelebA-HQ / FFHQ at 512, none of which TFDS can download at that size,
and listing + opening millions of loose files on every run is slow. Preparing once gives a few large
array_record files that `tfds.data_source` (and `sources.TfdsSource`) read with random access.

Layout: `{data_dir}/mat_image_folder/{dataset_name}/1.0.0/`, read back as
`tfds.data_source("mat_image_folder/{dataset_name}", data_dir=data_dir, split=...)`.
Features: `image` (encoded bytes, decoded to `[H, W, 3]` uint8) and `path` (the file's path relative to its
split folder, used to pair masks by name). RGB JPEG/PNG files are stored byte-for-byte (no re-encoding);
anything else (grayscale, RGBA, palette, WEBP, BMP, 16-bit) is converted to RGB and stored as PNG.

What fails without TensorFlow and is avoided here: yielding numpy arrays for an Image feature (TFDS encodes
them with tf.image), `tfds.ImageFolder`, and `dataset_info_from_configs` for a builder outside a package folder.
"""

from __future__ import annotations

import io
import os
import pathlib

import tensorflow_datasets as tfds
from absl import logging
from etils import epath
from PIL import Image

from mat_jax.data import preprocess, sources


class MatImageFolder(tfds.core.GeneratorBasedBuilder):
    """Images from local folders, one folder per split (manual data: nothing is downloaded)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Image folder -> array_record, RGB, original bytes kept when possible."}

    # TFDS' default `code_path` probes `importlib_resources` (not installed, not needed) for builders that live
    # in a package; the file path is all TFDS uses it for (looking for a checksums.tsv next to it).
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(__file__)

    def __init__(self, *, split_dirs: dict[str, str] | None = None, bad_data: str = "skip", **kwargs):
        self._split_dirs = dict(split_dirs or {})
        if bad_data not in sources.BAD_DATA_POLICIES:
            raise ValueError(f"bad_data must be one of {sources.BAD_DATA_POLICIES}, got {bad_data!r}")
        self._bad_data = bad_data
        self.skipped: dict[str, str] = {}
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Images from local folders for MAT inpainting (prepared by mat_jax.data.tfds_builder).",
            features=tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=(None, None, 3)), "path": tfds.features.Text()}
            ),
        )

    def _split_generators(self, dl_manager):
        if not self._split_dirs:
            raise ValueError("MatImageFolder needs split_dirs={'train': '/path/to/images', ...}")
        return {split: self._generate_examples(folder) for split, folder in self._split_dirs.items()}

    def _encoded(self, path: str) -> bytes | None:
        """Bytes to store for one file, or None when it is bad and the policy is skip."""
        try:
            data = pathlib.Path(path).read_bytes()
            rgb = preprocess.decode_image(data, where=path)  # full decode: rejects corrupt / truncated files
            with Image.open(io.BytesIO(data)) as im:
                if im.mode == "RGB" and im.format in ("JPEG", "PNG"):
                    return data
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="PNG")
            return buf.getvalue()
        except preprocess.BadImageError as e:
            if self._bad_data == "error":
                raise
            self.skipped[path] = e.reason
            logging.warning("skipping bad image %s (%s)", path, e.reason)
            return None

    def _generate_examples(self, folder: str):
        from tqdm import tqdm

        files = sources.list_files(folder)
        if not files:
            raise ValueError(f"no images ({', '.join(sources.IMAGE_EXTENSIONS)}) found under {folder}")
        for rel in tqdm(files, desc=f"prepare {folder}", disable=not tqdm_enabled()):
            data = self._encoded(os.path.join(folder, rel))
            if data is not None:
                yield rel, {"image": data, "path": rel}


def tqdm_enabled() -> bool:
    """Progress bars unless MAT_JAX_NO_PROGRESS is set (tests / CI logs)."""
    return not os.environ.get("MAT_JAX_NO_PROGRESS")


def prepare_image_folder(
    dataset_name: str,
    split_dirs: dict[str, str],
    data_dir: str,
    *,
    bad_data: str = "skip",
) -> tuple[str, dict[str, str]]:
    """Prepare `mat_image_folder/{dataset_name}` from `split_dirs` ({split: folder}) under `data_dir`.

    Returns (the name to pass to `tfds.data_source` / `DataConfig.path`, {skipped file: reason}).
    Re-running with an existing prepared version is a no-op (TFDS semantics); delete the folder to redo it.
    """
    for split, folder in split_dirs.items():
        if not pathlib.Path(folder).is_dir():
            raise FileNotFoundError(f"split {split!r}: image folder {folder} does not exist")
    config = tfds.core.BuilderConfig(name=dataset_name, description=f"images from {sorted(split_dirs.values())}")
    builder = MatImageFolder(
        split_dirs=split_dirs, bad_data=bad_data, config=config, data_dir=data_dir, file_format="array_record"
    )
    builder.download_and_prepare()
    if builder.skipped:
        logging.warning("%d bad images were skipped: %s", len(builder.skipped), sorted(builder.skipped))
    return f"mat_image_folder/{dataset_name}", dict(builder.skipped)
