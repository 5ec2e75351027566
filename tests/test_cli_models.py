"""`mat-jax info` and `mat-jax demo` end to end on the tiny config."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mat_jax import cli
from mat_jax.commands.info import param_counts
from mat_jax.models import MATConfig


def test_info_prints_counts_and_flops(capsys):
    assert cli.main(["info", "--config", "configs/tiny.py"]) == 0
    out = capsys.readouterr().out
    assert "Generator parameters" in out and "synthesis.first_stage" in out
    assert "forward FLOPs (XLA, batch 1)" in out


def test_info_counts_match_official_table():
    counts = param_counts(MATConfig(resolution=512), "G")
    assert counts["<total>"] == 61_562_518  # golden README, R=512
    assert counts["synthesis.first_stage"] == 12_063_865
    assert param_counts(MATConfig(resolution=256), "D")["<total>"] == 36_083_330


def test_demo_writes_grid(tmp_path):
    out = tmp_path / "grid.png"
    assert cli.main(["demo", "--config", "configs/tiny.py", "--output", str(out)]) == 0
    im = np.asarray(Image.open(out))
    assert im.ndim == 3 and im.shape[0] > 4 * 64 and im.shape[1] > 5 * 64
