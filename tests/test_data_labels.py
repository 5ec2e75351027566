"""Class labels in the data pipeline: dataset.json (StyleGAN2-ADA layout), class sub-folders and a TFDS integer
feature give the right one-hot label per image, also after shuffling; missing / unknown labels and unlabelled
sources are errors."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from mat_jax.data import pipeline, sources

R = 16


def _png(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)


@pytest.fixture()
def json_folder(tmp_path):
    """6 images (one in a sub-folder) and a dataset.json with labels in {0, 1, 3} (num_classes = 4)."""
    root = tmp_path / "json"
    rels = ["a.png", "b.png", "c.png", "d.png", "e.png", "sub/f.png"]
    for i, rel in enumerate(rels):
        _png(root / rel, i)
    labels = {"a.png": 0, "b.png": 1, "c.png": 3, "d.png": 1, "e.png": 0, "sub/f.png": 3}
    (root / "dataset.json").write_text(json.dumps({"labels": [[k, v] for k, v in labels.items()]}))
    return root, labels


@pytest.fixture()
def class_folder(tmp_path):
    root = tmp_path / "classes"
    labels = {}
    for cls, k in (("cat", 0), ("dog", 1), ("zebra", 2)):
        for j in range(2 + k):
            rel = f"{cls}/{j}.png"
            _png(root / rel, 10 * k + j)
            labels[rel] = k
    return root, labels


def _check_stream(cfg, keys, labels, n_classes, batches=4, batch_size=3):
    ds = pipeline.make_dataset(cfg, seed=3, batch_size=batch_size)
    seen_order = []
    for k in range(batches):
        b = ds[k]
        assert b["label"].shape == (batch_size, n_classes) and b["label"].dtype == np.float32
        np.testing.assert_array_equal(b["label"].sum(1), 1.0)
        for idx, row in zip(b["index"], b["label"], strict=True):
            assert int(np.argmax(row)) == labels[keys[int(idx)]], keys[int(idx)]
        seen_order += [int(i) for i in b["index"]]
    return seen_order


def test_dataset_json_one_hot_after_shuffling(json_folder):
    root, labels = json_folder
    cfg = pipeline.DataConfig(source="folder", path=str(root), resolution=R, labels="dataset_json", return_index=True)
    assert pipeline.num_classes(cfg) == 4  # max label + 1, as StyleGAN2-ADA
    raw = pipeline.build_raw_source(cfg)
    order = _check_stream(cfg, raw.files, labels, 4)
    assert order != sorted(order)  # really shuffled
    # unconditional: the same folder yields no "label" and num_classes 0
    plain = pipeline.DataConfig(source="folder", path=str(root), resolution=R)
    assert pipeline.num_classes(plain) == 0
    assert "label" not in pipeline.make_dataset(plain, seed=3, batch_size=3)[0]


def test_dataset_json_errors(json_folder):
    root, labels = json_folder
    cfg = pipeline.DataConfig(source="folder", path=str(root), resolution=R, labels="dataset_json")
    entries = [[k, v] for k, v in labels.items()]
    (root / "dataset.json").write_text(json.dumps({"labels": entries[1:]}))  # a.png unlabelled
    with pytest.raises(ValueError, match=r"no label in .*dataset\.json.*a\.png"):
        pipeline.num_classes(cfg)
    (root / "dataset.json").write_text(json.dumps({"labels": [*entries, ["ghost.png", 1]]}))
    with pytest.raises(ValueError, match=r"dataset\.json labels 'ghost\.png'.*unknown file"):
        pipeline.make_dataset(cfg, seed=0, batch_size=2)
    (root / "dataset.json").write_text(json.dumps({"labels": [*entries[1:], ["a.png", -1]]}))
    with pytest.raises(ValueError, match=r"label of 'a\.png' must be an integer >= 0"):
        pipeline.num_classes(cfg)
    (root / "dataset.json").write_text(json.dumps({"labels": None}))
    with pytest.raises(ValueError, match=r"no \"labels\" list"):
        pipeline.num_classes(cfg)
    os.remove(root / "dataset.json")
    with pytest.raises(FileNotFoundError, match=r"dataset\.json"):
        pipeline.num_classes(cfg)


def test_subfolders_one_hot_after_shuffling(class_folder):
    root, labels = class_folder
    cfg = pipeline.DataConfig(source="folder", path=str(root), resolution=R, labels="subfolders", return_index=True)
    raw = pipeline.build_raw_source(cfg)
    assert raw.class_names == ["cat", "dog", "zebra"] and pipeline.num_classes(cfg) == 3
    _check_stream(cfg, raw.files, labels, 3)
    # per-host shards keep each record's own label
    for p in range(2):
        ds = pipeline.make_dataset(cfg, seed=5, batch_size=2, process_index=p, process_count=2)
        b = ds[1]
        for idx, row in zip(b["index"], b["label"], strict=True):
            assert int(np.argmax(row)) == labels[raw.files[int(idx)]]
    _png(root / "loose.png", 99)
    with pytest.raises(ValueError, match=r"class sub-folder.*loose\.png"):
        pipeline.num_classes(cfg)


def test_unlabelled_sources_refuse_labels(tmp_path):
    with pytest.raises(ValueError, match="carries no labels"):
        pipeline.DataConfig(source="array_record", path=str(tmp_path / "x.array_record"), labels="subfolders")
    with pytest.raises(ValueError, match="carries no labels"):
        pipeline.DataConfig(source="demo", labels="dataset_json")
    with pytest.raises(ValueError, match="does not apply"):
        pipeline.DataConfig(source="folder", path=str(tmp_path), labels="tfds")
    with pytest.raises(ValueError, match="does not apply"):
        pipeline.DataConfig(source="tfds", path="x", labels="subfolders")
    with pytest.raises(ValueError, match="data.labels='x' is not one of"):
        pipeline.DataConfig(source="demo", labels="x")
    assert pipeline.num_classes(pipeline.DataConfig(source="demo")) == 0


_BUILDERS = {}


def _builder_class(with_num_classes: bool):
    """A MatImageFolder with an integer class feature "cls" (ClassLabel or a plain int64), registered once."""
    if with_num_classes not in _BUILDERS:
        import tensorflow_datasets as tfds

        from mat_jax.data import tfds_builder

        feature = tfds.features.ClassLabel(num_classes=3) if with_num_classes else tfds.features.Scalar(np.int64)

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {"image": tfds.features.Image(shape=(None, None, 3)), "path": tfds.features.Text(), "cls": feature}
                ),
            )

        def _generate_examples(self, folder):
            for rel in sources.list_files(folder):
                with open(os.path.join(folder, rel), "rb") as f:
                    data = f.read()
                yield (
                    rel,
                    {"image": data, "path": rel, "cls": int(rel.split("/")[0] != "cat") + int(rel.startswith("zebra"))},
                )

        _BUILDERS[with_num_classes] = type(
            f"LabelledFolder{int(with_num_classes)}",
            (tfds_builder.MatImageFolder,),
            {"_info": _info, "_generate_examples": _generate_examples},
        )
    return _BUILDERS[with_num_classes]


def _labelled_tfds(class_folder, tmp_path, monkeypatch, with_num_classes: bool):
    import tensorflow_datasets as tfds

    root, _ = class_folder
    monkeypatch.setenv("MAT_JAX_NO_PROGRESS", "1")
    tfds.disable_progress_bar()
    config = tfds.core.BuilderConfig(name="tiny")
    builder = _builder_class(with_num_classes)(
        split_dirs={"train": str(root)}, config=config, data_dir=str(tmp_path / "tfds"), file_format="array_record"
    )
    builder.download_and_prepare()
    return f"{builder.name}/tiny", str(tmp_path / "tfds")


@pytest.mark.parametrize("with_num_classes", [True, False])
def test_tfds_label_feature(class_folder, tmp_path, monkeypatch, with_num_classes):
    _, labels = class_folder
    name, data_dir = _labelled_tfds(class_folder, tmp_path, monkeypatch, with_num_classes)
    cfg = pipeline.DataConfig(
        source="tfds",
        path=name,
        tfds_data_dir=data_dir,
        resolution=R,
        labels="tfds",
        label_key="cls",
        return_index=True,
    )
    assert pipeline.num_classes(cfg) == 3
    raw = pipeline.build_raw_source(cfg)
    keys = [raw.raw(i)[1] for i in range(len(raw))]
    _check_stream(cfg, keys, labels, 3)
    bad = pipeline.DataConfig(source="tfds", path=name, tfds_data_dir=data_dir, resolution=R, labels="tfds")
    with pytest.raises(KeyError, match="'label'"):  # the default label_key is absent
        pipeline.num_classes(bad)
