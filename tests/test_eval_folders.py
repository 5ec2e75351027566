"""Folder evaluation: official pairing by name, batching by size, shards that merge, errors naming the files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mat_jax.data.demo_data import demo_images
from mat_jax.data.preprocess import BadImageError
from mat_jax.eval.accumulator import EvalAccumulator
from mat_jax.eval.folders import accumulate_folders, evaluate_folders, pair_image_files
from mat_jax.eval.score import Score


def _mean_colour(x):
    return x.reshape(len(x), -1, 3).mean(1).astype(np.float32)


@pytest.fixture()
def folders(tmp_path):
    """7 pairs: 5 of 24×32 and 2 of 20×20 (one gray); ground truths as PNG, inpaintings PNG except one JPEG."""
    photos = list(demo_images(("astronaut", "coffee", "chelsea")).values())
    rng = np.random.default_rng(0)
    real_dir, fake_dir = tmp_path / "gt", tmp_path / "out"
    real_dir.mkdir()
    fake_dir.mkdir()
    pairs = {}
    for i in range(7):
        h, w = (24, 32) if i < 5 else (20, 20)
        real = photos[i % 3][i * 10 : i * 10 + h, 30 : 30 + w]
        fake = np.clip(real.astype(np.int16) + rng.integers(-20, 21, real.shape), 0, 255).astype(np.uint8)
        name = f"img_{i:03d}"
        if i == 6:  # grayscale ground truth, read back as 3 equal channels
            real = np.repeat(real[..., :1], 3, axis=2)
            Image.fromarray(real[..., 0], mode="L").save(real_dir / f"{name}.png")
        else:
            Image.fromarray(real).save(real_dir / f"{name}.png")
        if i == 3:
            Image.fromarray(fake).save(fake_dir / f"{name}.jpg", quality=95)
            fake = np.asarray(Image.open(fake_dir / f"{name}.jpg").convert("RGB"))
        else:
            Image.fromarray(fake).save(fake_dir / f"{name}.png")
        pairs[name] = (real, fake)
    (fake_dir / "notes.txt").write_text("not an image")
    return fake_dir, real_dir, pairs


def test_folders_equal_the_accumulator_on_the_arrays(folders):
    fake_dir, real_dir, pairs = folders
    assert [n for n, _, _ in pair_image_files(fake_dir, real_dir)] == sorted(pairs)
    got = evaluate_folders(fake_dir, real_dir, _mean_colour, batch_size=3, kid_subsets=3)
    direct = EvalAccumulator(_mean_colour)
    for name in sorted(pairs):
        real, fake = pairs[name]
        direct.update(real[None], fake[None])
    expected = direct.result(kid_subsets=3)
    assert got["lpips"] == expected["lpips"] == Score(None, "no LPIPS network given")  # none given here
    for k, score in expected.items():
        if k != "lpips":
            assert score.value is not None, k
            assert got[k].value == pytest.approx(score.value, rel=1e-9), k


def test_shards_merge_to_the_whole(folders):
    fake_dir, real_dir, _ = folders
    whole = accumulate_folders(fake_dir, real_dir, _mean_colour).result(kid_subsets=2)
    parts = [accumulate_folders(fake_dir, real_dir, _mean_colour, shard=(i, 3)) for i in range(3)]
    merged = parts[0].merge(parts[1]).merge(parts[2]).result(kid_subsets=2)
    for k in ("psnr", "ssim", "l1", "fid"):
        assert merged[k].value == pytest.approx(whole[k].value, rel=1e-9), k
    seen = []
    accumulate_folders(fake_dir, real_dir, shard=(1, 3), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]


def test_folder_errors_name_the_files(folders, tmp_path):
    fake_dir, real_dir, pairs = folders
    (fake_dir / "img_000.png").rename(fake_dir / "other.png")
    with pytest.raises(ValueError, match=r"only in .*out: other; only in .*gt: img_000"):
        pair_image_files(fake_dir, real_dir)
    (fake_dir / "other.png").rename(fake_dir / "img_000.png")
    Image.fromarray(pairs["img_001"][1][:-2]).save(fake_dir / "img_001.png")
    with pytest.raises(ValueError, match="img_001.png is 32×22 but .*img_001.png is 32×24"):
        accumulate_folders(fake_dir, real_dir)
    (fake_dir / "img_001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(BadImageError, match="img_001.png"):
        accumulate_folders(fake_dir, real_dir)
    (fake_dir / "img_002.jpeg").write_bytes(b"")
    with pytest.raises(ValueError, match="same name 'img_002'"):
        pair_image_files(fake_dir, real_dir)
    with pytest.raises(FileNotFoundError):
        pair_image_files(tmp_path / "missing", real_dir)


def test_eval_folders_command_writes_the_report(folders, tmp_path, capsys):
    import json

    from mat_jax import cli

    fake_dir, real_dir, pairs = folders
    out = tmp_path / "report.json"
    assert cli.main(["eval-folders", str(fake_dir), str(real_dir), "--out", str(out), "--no-progress"]) == 0
    rep = json.loads(out.read_text())
    expected = evaluate_folders(fake_dir, real_dir)
    assert rep["num_images"] == 7
    for k in ("psnr", "ssim", "l1"):
        assert rep[k] == pytest.approx(expected[k].value, rel=1e-12), k
    for k in ("fid", "p_ids", "u_ids", "kid"):
        assert rep[k] is None and rep["notes"][k] == "no --inception-weights given", k
    assert rep["lpips"] is None and rep["notes"]["lpips"] == "no --lpips-weights given"
    printed = capsys.readouterr().out
    assert "psnr" in printed and f"{rep['psnr']:.4f}" in printed and "null" in printed
    (fake_dir / "img_000.png").rename(fake_dir / "other.png")
    assert cli.main(["eval-folders", str(fake_dir), str(real_dir), "--out", str(tmp_path / "bad.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mat-jax eval-folders: error: the folders do not pair") and "other" in err
    assert not (tmp_path / "bad.json").exists()


def test_corrupt_file_follows_the_bad_data_switch(folders, tmp_path, capsys):
    """A truncated PNG: --bad-data error (default) names it and writes nothing; skip leaves its pair out, the
    metrics are those of the other six pairs and the report lists the file."""
    import json

    from mat_jax import cli

    fake_dir, real_dir, pairs = folders
    bad = fake_dir / "img_002.png"
    bad.write_bytes(bad.read_bytes()[:40])
    out = tmp_path / "report.json"
    assert cli.main(["eval-folders", str(fake_dir), str(real_dir), "--out", str(out), "--no-progress"]) == 1
    assert "img_002.png" in capsys.readouterr().err and not out.exists()
    args = ["eval-folders", str(fake_dir), str(real_dir), "--out", str(out), "--no-progress", "--bad-data", "skip"]
    assert cli.main(args) == 0
    rep = json.loads(out.read_text())
    assert rep["num_images"] == 6 and list(rep["skipped"]) == [str(bad)]
    acc = EvalAccumulator()
    for name, (real, fake) in pairs.items():
        if name != "img_002":
            acc.update(real[None], fake[None])
    expected = acc.result()
    for k in ("psnr", "ssim", "l1"):
        assert rep[k] == pytest.approx(expected[k].value, rel=1e-12), k
    assert "skipped 1 unreadable pair(s)" in capsys.readouterr().err
