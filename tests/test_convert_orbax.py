"""The mat-jax checkpoint directory as a `mat-jax convert` format: bit-exact both ways."""

from __future__ import annotations

import numpy as np
from golden_utils import load_make_params

from mat_jax import cli
from mat_jax.convert.formats import read_checkpoint, write_checkpoint


def test_official_to_directory_and_back_bit_exact(golden_dir, tmp_path):
    mp = load_make_params(golden_dir)
    g = mp.make_params(golden_dir / "keys_G_256.json")
    d = mp.make_params(golden_dir / "keys_D_256.json")
    src = tmp_path / "gd.safetensors"
    write_checkpoint(src, {"G_ema": g, "D": d})
    ckpt_dir = tmp_path / "ckpt"
    assert cli.main(["convert", str(src), str(ckpt_dir), "--net", "G_ema,D"]) == 0
    assert (ckpt_dir / "model_config.json").is_file() and (ckpt_dir / "G_ema").is_dir()
    back = tmp_path / "back.safetensors"
    assert cli.main(["convert", str(ckpt_dir), str(back), "--net", "G_ema,D"]) == 0
    nets = read_checkpoint(back).nets
    for name, ref in (("G_ema", g), ("D", d)):
        assert list(nets[name]) == list(ref)  # official order
        for k, v in ref.items():
            assert nets[name][k].dtype == v.dtype and nets[name][k].shape == v.shape, k
            np.testing.assert_array_equal(nets[name][k], v, err_msg=k)


def test_directory_refuses_to_overwrite_foreign_folder(golden_dir, tmp_path, capsys):
    mp = load_make_params(golden_dir)
    src = tmp_path / "d.safetensors"
    write_checkpoint(src, {"D": mp.make_params(golden_dir / "keys_D_128.json")})
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert cli.main(["convert", str(src), str(foreign), "--net", "D"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (foreign / "keep.txt").read_text() == "mine"
