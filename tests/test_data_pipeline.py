"""The grain pipeline: determinism, per-epoch reshuffling, exact resume (in-process, 2 workers, orbax),
per-host shards, file masks, bad data, configs."""

import os

import numpy as np
import pytest
from PIL import Image

from mat_jax.data import mask_io, masks_extra, pipeline, preprocess

R = 32


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """12 images of assorted sizes (some smaller than the crop, to exercise the official reflect padding)."""
    root = tmp_path_factory.mktemp("pipeline_imgs")
    rng = np.random.default_rng(0)
    for i in range(12):
        h, w = (40, 48) if i % 3 else (24, 36)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"img{i:02d}.png")
    return str(root)


def _cfg(folder, **kw):
    return pipeline.DataConfig(**{"source": "folder", "path": folder, "resolution": R, "return_index": True, **kw})


def _take(it, n):
    return [next(it) for _ in range(n)]


def _assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_batches_have_the_documented_layout_and_are_deterministic(folder):
    it, _ = pipeline.make_train_iterator(_cfg(folder), seed=1, global_batch_size=4, process_index=0, process_count=1)
    batches = _take(it, 4)
    b = batches[0]
    assert b["image"].shape == (4, R, R, 3) and b["image"].dtype == np.float32
    assert b["mask"].shape == (4, R, R, 1) and b["mask"].dtype == np.float32
    assert b["image"].min() >= -1 and b["image"].max() <= 1
    assert set(np.unique(b["mask"])) <= {0.0, 1.0}
    again, _ = pipeline.make_train_iterator(_cfg(folder), seed=1, global_batch_size=4, process_index=0, process_count=1)
    _assert_batches_equal(batches, _take(again, 4))
    other, _ = pipeline.make_train_iterator(_cfg(folder), seed=2, global_batch_size=4, process_index=0, process_count=1)
    assert not np.array_equal(next(other)["image"], batches[0]["image"])
    # masks are the documented per-record masks of the stream positions 0..3
    np.testing.assert_array_equal(b["mask"][2], masks_extra.make_mask("mat_large", R, 1, 2))


def test_each_epoch_is_a_new_permutation(folder):
    it, _ = pipeline.make_train_iterator(_cfg(folder), seed=0, global_batch_size=4, process_index=0, process_count=1)
    idx = np.concatenate([b["index"] for b in _take(it, 6)])
    e1, e2 = idx[:12], idx[12:]
    assert sorted(e1) == list(range(12)) and sorted(e2) == list(range(12))
    assert not np.array_equal(e1, e2)
    assert not np.array_equal(e1, np.arange(12))


def test_resume_from_state_in_process(folder):
    cfg = _cfg(folder)
    it, _ = pipeline.make_train_iterator(cfg, seed=3, global_batch_size=4, process_index=0, process_count=1)
    _take(it, 4)  # crosses an epoch boundary (12 images / 4)
    state = it.get_state()
    expected = _take(it, 4)
    it2, _ = pipeline.make_train_iterator(cfg, seed=3, global_batch_size=4, process_index=0, process_count=1)
    it2.set_state(state)
    _assert_batches_equal(_take(it2, 4), expected)


@pytest.mark.parametrize("n_hosts", [2, 4])
def test_hosts_see_disjoint_shards_that_together_make_each_epoch(folder, n_hosts):
    """Per-host iterators (process_index/process_count as arguments, as jax.distributed would give them) over two
    epochs of 12 records: within an epoch no record is seen twice by any host or by two hosts, the hosts together
    see all 12, and host p's batch k is the single-host batch k's rows p, p+n, ..."""
    cfg = _cfg(folder)
    single, _ = pipeline.make_train_iterator(cfg, seed=5, global_batch_size=4, process_index=0, process_count=1)
    hosts = [
        pipeline.make_train_iterator(cfg, seed=5, global_batch_size=4, process_index=p, process_count=n_hosts)[0]
        for p in range(n_hosts)
    ]
    glob = _take(single, 6)  # two epochs of 3 batches
    per_host = [_take(h, 6) for h in hosts]
    for epoch in (slice(0, 3), slice(3, 6)):
        ids = [np.concatenate([b["index"] for b in hb[epoch]]).tolist() for hb in per_host]
        assert all(len(i) == 12 // n_hosts for i in ids)
        flat = [r for i in ids for r in i]
        assert len(set(flat)) == len(flat) and set(flat) == set(range(12))  # disjoint, and complete
    for k in range(6):
        for p in range(n_hosts):
            assert per_host[p][k]["image"].shape == (4 // n_hosts, R, R, 3)
            for key in ("image", "mask", "index"):
                np.testing.assert_array_equal(per_host[p][k][key], glob[k][key][p::n_hosts])
    with pytest.raises(ValueError, match="not divisible by process_count=3"):
        pipeline.make_train_iterator(cfg, seed=5, global_batch_size=4, process_index=0, process_count=3)


def test_two_workers_give_the_same_stream_and_resume_exactly(folder):
    cfg = _cfg(folder)
    ref, _ = pipeline.make_train_iterator(cfg, seed=7, global_batch_size=4, process_index=0, process_count=1)
    expected = _take(ref, 6)
    it, _ = pipeline.make_train_iterator(
        cfg, seed=7, global_batch_size=4, process_index=0, process_count=1, num_workers=2
    )
    _assert_batches_equal(_take(it, 3), expected[:3])
    state = it.get_state()
    it2, _ = pipeline.make_train_iterator(
        cfg, seed=7, global_batch_size=4, process_index=0, process_count=1, num_workers=2
    )
    it2.set_state(state)
    _assert_batches_equal(_take(it2, 3), expected[3:])


def test_orbax_checkpoint_round_trip_of_the_iterator(folder, tmp_path):
    import grain
    import orbax.checkpoint as ocp

    cfg = _cfg(folder)
    it, _ = pipeline.make_train_iterator(cfg, seed=9, global_batch_size=4, process_index=0, process_count=1)
    _take(it, 2)
    mngr = ocp.CheckpointManager(os.path.abspath(tmp_path / "ckpt"), options=ocp.CheckpointManagerOptions(create=True))
    mngr.save(2, args=ocp.args.Composite(data_iter=grain.checkpoint.CheckpointSave(it)))
    mngr.wait_until_finished()
    expected = _take(it, 3)
    it2, _ = pipeline.make_train_iterator(cfg, seed=9, global_batch_size=4, process_index=0, process_count=1)
    mngr.restore(2, args=ocp.args.Composite(data_iter=grain.checkpoint.CheckpointRestore(it2)))
    mngr.close()
    _assert_batches_equal(_take(it2, 3), expected)


def test_process_defaults_come_from_jax(folder):
    import jax

    it, _ = pipeline.make_train_iterator(_cfg(folder), seed=4, global_batch_size=2 * jax.process_count())
    assert next(it)["image"].shape == (2, R, R, 3)
    with pytest.raises(ValueError, match=r"process_index=2 is not in \[0, process_count=2\)"):
        pipeline.make_dataset(_cfg(folder), seed=0, batch_size=2, process_index=2, process_count=2)


def test_random_access_equals_iteration(folder):
    ds = pipeline.make_dataset(_cfg(folder), seed=4, batch_size=4)
    it, _ = pipeline.make_train_iterator(_cfg(folder), seed=4, global_batch_size=4, process_index=0, process_count=1)
    _assert_batches_equal([ds[5]], [_take(it, 6)[5]])


def test_file_masks_center_crop_and_no_flip_for_evaluation(folder, tmp_path):
    mdir = tmp_path / "masks"
    mdir.mkdir()
    files = sorted(os.listdir(folder))
    for i in range(12):
        mask_io.save_mask(mdir / f"m{i:02d}.png", masks_extra.make_mask("mat_small", R, 0, i))
    cfg = pipeline.eval_config(_cfg(folder, mask_path=str(mdir)))
    assert (cfg.crop, cfg.flip, cfg.shuffle, cfg.num_epochs, cfg.drop_remainder) == ("center", False, False, 1, False)
    ds = pipeline.make_dataset(cfg, seed=0, batch_size=5)
    batches = [ds[k] for k in range(len(ds))]
    assert [len(b["index"]) for b in batches] == [5, 5, 2]
    idx = np.concatenate([b["index"] for b in batches])
    np.testing.assert_array_equal(idx, np.arange(12))
    masks = np.concatenate([b["mask"] for b in batches])
    images = np.concatenate([b["image"] for b in batches])
    for i in range(12):
        np.testing.assert_array_equal(masks[i], masks_extra.make_mask("mat_small", R, 0, i))
        img = preprocess.decode_image(os.path.join(folder, files[i]))
        want = preprocess.crop_image(img, R, np.random.default_rng(), crop="center")
        np.testing.assert_array_equal(preprocess.from_model_range(images[i]), want)
    bad = _cfg(folder, mask_path=str(mdir), resolution=16)
    with pytest.raises(ValueError, match=r"m00.png is 32x32 \(HxW\), expected 16x16"):
        pipeline.make_dataset(bad, seed=0, batch_size=2)[0]


def test_bad_files_in_the_stream_are_replaced_or_raise(folder, tmp_path):
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(folder, root)
    (root / "img05.png").write_bytes(b"")
    (root / "zz_fake.jpg").write_text("no")
    it, _ = pipeline.make_train_iterator(
        _cfg(str(root)), seed=0, global_batch_size=13, process_index=0, process_count=1
    )
    idx = next(it)["index"]  # one full epoch
    assert 5 not in idx and 12 not in idx and len(idx) == 13
    it, _ = pipeline.make_train_iterator(
        _cfg(str(root), bad_data="error"), seed=0, global_batch_size=13, process_index=0, process_count=1
    )
    with pytest.raises(preprocess.BadImageError, match="img05.png|zz_fake.jpg"):
        next(it)


def test_flip_is_random_per_record(folder):
    cfg = _cfg(folder, crop="center", shuffle=False, small_images="resize")
    ds = pipeline.make_dataset(cfg, seed=0, batch_size=12)
    flat = pipeline.make_dataset(pipeline.DataConfig(**{**cfg.__dict__, "flip": False}), seed=0, batch_size=12)
    a, b = ds[0]["image"], flat[0]["image"]
    flipped = [not np.array_equal(a[i], b[i]) for i in range(12)]
    for i in range(12):
        assert np.array_equal(a[i], b[i]) or np.array_equal(a[i], b[i][:, ::-1])
    assert 0 < sum(flipped) < 12


def test_demo_source_bf16_and_from_config():
    import ml_collections

    cd = ml_collections.ConfigDict(
        {
            "source": "demo",
            "resolution": 64,
            "dtype": "bfloat16",
            "crop": "resize_random_crop",
            "mask_kind": "lama_thick",
            "demo_repeats": 2,
        }
    )
    it, _ = pipeline.make_train_iterator(cd, seed=0, global_batch_size=2, process_index=0, process_count=1)
    b = next(it)
    assert b["image"].shape == (2, 64, 64, 3) and b["image"].dtype.name == "bfloat16"
    assert b["mask"].dtype == np.float32 and 0 < b["mask"].mean() < 1
    with pytest.raises(ValueError, match=r"unknown data config keys \['resolutoin'\]"):
        pipeline.from_config({"source": "demo", "resolutoin": 64})
    with pytest.raises(ValueError, match="data.mask_kind='mat_huge' is not one of"):
        pipeline.from_config({"source": "demo", "mask_kind": "mat_huge"})
    with pytest.raises(ValueError, match="data.path is required"):
        pipeline.DataConfig(source="folder")
