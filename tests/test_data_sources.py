"""Sources: image folders (listing, cache, bad data), ArrayRecord files, the TFDS builder read back through
`tfds.data_source` without TensorFlow, mask folders and their pairing, and the bundled demo photos."""

import io
import logging
import sys

import numpy as np
import pytest
from PIL import Image

from mat_jax.data import demo_data, preprocess, sources


def _write(path, arr, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


@pytest.fixture
def good_folder(tmp_path):
    """5 good images (png/jpg/webp/bmp, RGB/gray/RGBA, nested) + a non-image file that must be ignored."""
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    _write(root / "a.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    _write(root / "b.JPG", rng.integers(0, 256, (50, 40, 3), dtype=np.uint8), fmt="JPEG")
    _write(root / "sub" / "c.png", rng.integers(0, 256, (33, 45), dtype=np.uint8))
    _write(root / "sub" / "deep" / "d.webp", rng.integers(0, 256, (36, 36, 4), dtype=np.uint8))
    _write(root / "sub" / "e.bmp", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    (root / "notes.txt").write_text("not an image")
    return root


def _add_bad_files(root):
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, format="PNG")
    (root / "corrupt.png").write_bytes(good.getvalue()[:2000])  # truncated
    (root / "empty.jpg").write_bytes(b"")  # zero bytes
    (root / "fake.png").write_text("this is text with an image extension")
    return {"corrupt.png", "empty.jpg", "fake.png"}


def test_folder_listing_is_recursive_sorted_and_filtered(good_folder):
    src = sources.ImageFolderSource(good_folder)
    assert src.files == ["a.png", "b.JPG", "sub/c.png", "sub/deep/d.webp", "sub/e.bmp"]
    path, key = src.raw(2)
    assert key == "sub/c.png" and path == str(good_folder / "sub" / "c.png")


def test_file_list_cache_is_reused_until_refresh(good_folder, tmp_path):
    cache = tmp_path / "cache"
    first = sources.list_files(good_folder, cache_dir=cache)
    (cache_file,) = cache.glob("filelist-*.json")
    # a file added in a subfolder does not change the root's mtime: the cached list is served ...
    _write(good_folder / "sub" / "f.png", np.zeros((8, 8, 3), np.uint8))
    assert sources.list_files(good_folder, cache_dir=cache) == first
    # ... until refresh=True, or until the root folder itself changes
    assert "sub/f.png" in sources.list_files(good_folder, cache_dir=cache, refresh=True)
    _write(good_folder / "z.png", np.zeros((8, 8, 3), np.uint8))
    assert "z.png" in sources.list_files(good_folder, cache_dir=cache)
    assert cache_file.exists()


def test_empty_or_missing_folder_fails_before_training(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no images .* found under .*empty"):
        sources.ImageFolderSource(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nope"):
        sources.ImageFolderSource(tmp_path / "nope")


def test_bad_files_are_skipped_counted_and_logged(good_folder, caplog):
    bad_names = _add_bad_files(good_folder)
    raw = sources.ImageFolderSource(good_folder)
    assert len(raw) == 8
    src = sources.DecodedSource(raw, bad_data="skip")
    with caplog.at_level(logging.WARNING):
        records = [src[i] for i in range(len(src))]
    assert set(src.bad) == {str(good_folder / n) for n in bad_names}
    for name in bad_names:
        assert any(name in r.getMessage() and "skipping bad image" in r.getMessage() for r in caplog.records)
    # every index yields a good image; a bad one is replaced by the next good record (cyclically)
    keys = [r["key"] for r in records]
    assert not set(keys) & bad_names
    for r in records:
        assert r["image"].dtype == np.uint8 and r["image"].ndim == 3 and r["image"].shape[2] == 3
    assert raw.files[2:6] == ["corrupt.png", "empty.jpg", "fake.png", "sub/c.png"]
    c = "sub/c.png"
    assert keys == ["a.png", "b.JPG", c, c, c, c, "sub/deep/d.webp", "sub/e.bmp"]
    # verify_source reports all of them up front, with reasons
    report = sources.verify_source(raw, progress=False)
    assert set(report) == {str(good_folder / n) for n in bad_names}
    assert "zero-byte" in report[str(good_folder / "empty.jpg")]


def test_bad_file_with_error_policy_names_the_file(good_folder):
    _add_bad_files(good_folder)
    raw = sources.ImageFolderSource(good_folder)
    src = sources.DecodedSource(raw, bad_data="error")
    with pytest.raises(preprocess.BadImageError, match="corrupt.png"):
        src[raw.files.index("corrupt.png")]
    with pytest.raises(ValueError, match="bad_data must be one of"):
        sources.DecodedSource(raw, bad_data="ignore")


def test_array_record_round_trip(good_folder, tmp_path):
    files = [good_folder / "a.png", good_folder / "b.JPG", good_folder / "sub" / "c.png"]
    assert sources.write_array_record(files, tmp_path / "x.array_record") == 3
    src = sources.DecodedSource(sources.ArrayRecordImageSource(str(tmp_path / "*.array_record")))
    assert len(src) == 3
    for i, f in enumerate(files):
        np.testing.assert_array_equal(src[i]["image"], preprocess.decode_image(f))
    with pytest.raises(FileNotFoundError, match="missing"):
        sources.ArrayRecordImageSource(str(tmp_path / "missing*.array_record"))


def test_tfds_builder_without_tensorflow_reads_back_identical(good_folder, tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from mat_jax.data import tfds_builder

    monkeypatch.setenv("MAT_JAX_NO_PROGRESS", "1")
    tfds.disable_progress_bar()
    _add_bad_files(good_folder)
    name, skipped = tfds_builder.prepare_image_folder("tiny", {"train": str(good_folder)}, str(tmp_path / "tfds"))
    assert name == "mat_image_folder/tiny"
    assert {p.rsplit("/", 1)[-1] for p in skipped} == {"corrupt.png", "empty.jpg", "fake.png"}
    ds = tfds.data_source(name, data_dir=str(tmp_path / "tfds"), split="train")
    assert len(ds) == 5
    seen = set()
    for i in range(len(ds)):
        rec = ds[i]
        rel = rec["path"].decode() if isinstance(rec["path"], bytes) else rec["path"]
        seen.add(rel)
        np.testing.assert_array_equal(rec["image"], preprocess.decode_image(good_folder / rel))
    assert seen == {"a.png", "b.JPG", "sub/c.png", "sub/deep/d.webp", "sub/e.bmp"}
    # the project's TfdsSource reads the same records; TensorFlow was never needed
    src = sources.DecodedSource(sources.TfdsSource(name, data_dir=str(tmp_path / "tfds")))
    assert sorted(src[i]["key"] for i in range(len(src))) == sorted(seen)
    assert "tensorflow" not in sys.modules
    with pytest.raises(FileNotFoundError, match="Prepare it first"):
        sources.TfdsSource("mat_image_folder/absent", data_dir=str(tmp_path / "tfds"))


def test_prepare_data_command(good_folder, tmp_path, capsys, monkeypatch):
    from mat_jax import cli

    monkeypatch.setenv("MAT_JAX_NO_PROGRESS", "1")
    _add_bad_files(good_folder)
    argv = ["prepare-data", "--name", "cli", "--split", f"train={good_folder}", "--data-dir", str(tmp_path / "d")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "prepared mat_image_folder/cli" in out and "3 bad images skipped" in out and "empty.jpg" in out
    src = sources.TfdsSource("mat_image_folder/cli", data_dir=str(tmp_path / "d"))
    assert len(src) == 5
    assert cli.main(["prepare-data", "--name", "x", "--split", "train", "--data-dir", str(tmp_path)]) == 2
    assert "mat-jax prepare-data: error: --split expects SPLIT=DIR" in capsys.readouterr().err


def test_mask_folder_pairing(tmp_path, good_folder):
    mroot = tmp_path / "masks"
    for stem in ["a", "b", "sub/c", "sub/deep/d", "sub/e"]:
        _write(mroot / f"{stem}.png", np.full((8, 8), 255, np.uint8))
    msrc = sources.MaskFolderSource(mroot)
    keys = sources.ImageFolderSource(good_folder).files
    by_name = sources.pair_masks(keys, msrc, by="name")
    assert [p[len(str(mroot)) + 1 :] for p in by_name] == ["a.png", "b.png", "sub/c.png", "sub/deep/d.png", "sub/e.png"]
    assert len(sources.pair_masks(keys, msrc, by="sorted")) == 5
    with pytest.raises(ValueError, match="4 images but 5 masks"):
        sources.pair_masks(keys[:4], msrc, by="sorted")
    with pytest.raises(ValueError, match="no mask of the same name"):
        sources.pair_masks([*keys[:4], "zzz.png"], msrc, by="name")


def test_demo_photos_load_offline():
    images = demo_data.demo_images()
    assert set(images) >= {"astronaut", "coffee", "chelsea", "rocket"}
    assert set(images) == set(demo_data.DEMO_LICENSES)
    for name, img in images.items():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 300, name
    assert images["astronaut"].shape == (512, 512, 3)
    src = sources.DecodedSource(demo_data.DemoSource(repeats=2))
    assert len(src) == 2 * len(images)
    np.testing.assert_array_equal(src[len(images)]["image"], images[demo_data.DEMO_NAMES[0]])
    assert "pooch" not in sys.modules
