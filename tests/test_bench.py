"""The benchmarks' accounting (benchmarks/hardware.py, report.py, projection.py, bench_train.py): the chip lookup,
MFU / images/s, the all-reduce model and the projection tables against hand computations, the measured all-reduce,
and bench_train end to end on the demo config."""

from __future__ import annotations

import functools
import json
import math
import pathlib
import subprocess
import sys

import jax
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_train  # noqa: E402
import hardware  # noqa: E402
import projection  # noqa: E402
import report  # noqa: E402


@pytest.mark.parametrize(
    "kind, name",
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100 SXM"),
        ("TPU v4", "TPU v4"),
        ("TPU v5 lite", "TPU v5e"),
        ("TPU v5", "TPU v5p"),
        ("TPU v5p", "TPU v5p"),
        ("NVIDIA H100 PCIe", None),  # other clocks than the SXM row: measured, not looked up
        ("NVIDIA A100-PCIE-40GB", None),
        ("NVIDIA GeForce RTX 4090", None),
        ("cpu", None),
    ],
)
def test_lookup_by_device_kind(kind, name):
    chip = hardware.lookup(kind)
    assert (chip.name if chip else None) == name


def test_peaks_per_dtype_and_unknown_names():
    h100, v5e = hardware.by_name("H100 SXM"), hardware.by_name("tpu v5 lite")
    assert h100.peak("bfloat16") == 989.4e12 and h100.peak("float32") == 494.7e12  # float32 runs as TF32
    assert v5e.peak("float32") == v5e.peak("bfloat16") == 197e12  # one bf16 MXU pass at default precision
    with pytest.raises(ValueError, match="unknown chip 'B200'.*H100 SXM"):
        hardware.by_name("B200")


def test_speed_fields_match_hand_computation():
    # 3 TFLOP per step of 8 images in 0.5 s on 2 of a host's 4 devices, 10 TFLOP/s peak per device.
    got = report.speed(3e12, 0.5, 8, devices=2, local_devices=4, peak=10e12)
    want = {
        "images_per_s_device": 8.0,
        "images_per_s_host": 32.0,
        "gflop_per_image": 375.0,
        "tflops_device": 3.0,
        "mfu": 0.3,
    }
    assert got == pytest.approx(want)


def test_ring_allreduce_model():
    assert hardware.ring_allreduce_s(1e9, 1, 450e9) == 0.0
    assert hardware.ring_allreduce_s(1e9, 8, 450e9) == pytest.approx(1.75 / 450)
    h100 = hardware.by_name("H100 SXM")
    assert hardware.chip_allreduce_s(h100, 1e9, 8) == pytest.approx(1.75 / 450)  # NVLink within the node
    assert hardware.chip_allreduce_s(h100, 1e9, 16) == pytest.approx(2 * 15 / 16 / 50)  # the network beyond it
    with pytest.raises(ValueError, match="TPU v5e: 512 chips exceed"):
        hardware.chip_allreduce_s(hardware.by_name("TPU v5e"), 1e9, 512)


ROW = {"case": "p512:4", "program": "main", "dtype": "bfloat16", "step_s": 2.0, "batch_per_device": 4}
ROW.update(grad_bytes=4e8, gflop_per_image=3500.0)


def test_scaling_rows_add_measured_or_projected_allreduce():
    h200 = hardware.by_name("H200 SXM")
    two, eight = projection.scaling_rows(ROW, [2, 8], {2: 0.1, 8: None}, h200)
    assert two["basis"] == "measured + measured" and two["step_n_s"] == pytest.approx(2.1)
    assert two["images_per_s_device"] == pytest.approx(4 / 2.1) and two["images_per_s_total"] == pytest.approx(8 / 2.1)
    ring = 2 * 7 / 8 * 4e8 / 450e9
    assert eight["basis"] == "measured + projected" and eight["ar_projected_s"] == pytest.approx(ring)
    assert eight["step_n_s"] == pytest.approx(2 + ring) and eight["efficiency"] == pytest.approx(2 / (2 + ring))
    (cpu_row,) = projection.scaling_rows(ROW, [4], {4: None}, None)  # no measurement, no chip: nothing to add
    assert cpu_row["step_n_s"] is None and cpu_row["images_per_s_device"] is None


def test_accelerator_rows_from_flops_and_assumed_mfu():
    (r,) = projection.accelerator_rows(ROW, [hardware.by_name("H200 SXM")], [0.5], [8], "bfloat16")
    compute = 4 * 3500e9 / (989.4e12 * 0.5)
    assert r["step_s"] == pytest.approx(compute)
    assert r["img_s_1"] == pytest.approx(4 / compute)
    assert r["img_s_8"] == pytest.approx(4 / (compute + 2 * 7 / 8 * 4e8 / 450e9))
    assert r["mfu_for_goal"] == pytest.approx(40 * 3500e9 / 989.4e12)
    (tf32,) = projection.accelerator_rows(ROW, [hardware.by_name("H200 SXM")], [0.5], [8], "float32")
    assert tf32["step_s"] == pytest.approx(4 * 3500e9 / (494.7e12 * 0.5)) and tf32["flops_from"] == "bfloat16 run"


def test_iteration_row_amortises_lazy_r1():
    base = dict(ROW, devices=1, remat="none", grad_accum_steps=1, global_batch=4, local_devices=1, peak_flops=1e15)
    main = dict(base, xla_flops=14e12, d_reg_interval=16)
    r1 = dict(base, program="r1", step_s=0.8, xla_flops=1.6e12, grad_bytes=1.6e8)
    it = bench_train.iteration_row(main, [main, r1])
    assert it["program"] == "main+r1/16" and it["step_s"] == pytest.approx(2.05)
    assert it["xla_flops"] == pytest.approx(14.1e12) and it["grad_bytes"] == pytest.approx(4.1e8)
    assert it["mfu"] == pytest.approx(14.1e12 / 2.05 / 1e15) and it["images_per_s_device"] == pytest.approx(4 / 2.05)
    assert bench_train.iteration_row(main, [main]) is main  # no R1 measured: the main step alone


def test_table_plain_and_markdown():
    rows = [{"a": "x", "b": 1.23456, "c": None}, {"a": "yy", "b": float("nan")}]
    cols = [report.Col("A", "a"), report.Col("B", "b", ".2f"), report.Col("C", "c")]
    assert report.table(rows, cols).splitlines() == ["A      B  C", "x   1.23  –", "yy     –  –"]
    markdown = report.table(rows, cols, markdown=True).splitlines()
    assert markdown == ["| A | B | C |", "|---|---|---|", "| x | 1.23 | – |", "| yy | – | – |"]


def test_measured_allreduce_sums_over_devices():
    seconds = projection.measure_allreduce_s(4096, jax.devices()[:2], repeats=2)  # raises if the psum is wrong
    assert math.isfinite(seconds) and seconds > 0


def test_bench_train_rejects_bad_cases_and_chips():
    run = functools.partial(subprocess.run, capture_output=True, text=True, cwd=REPO)
    script = str(REPO / "benchmarks" / "bench_train.py")
    bad_case = run([sys.executable, script, "--cases", "p1024:1"])
    assert bad_case.returncode == 2 and "--cases 'p1024:1'" in bad_case.stderr
    bad_chip = run([sys.executable, script, "--cases", "demo:1", "--project-chips", "B200"])
    assert bad_chip.returncode == 2 and "unknown chip 'B200'" in bad_chip.stderr


@pytest.mark.slow
def test_bench_train_demo_end_to_end(tmp_path):
    """One demo case on CPU with the projection: the reported numbers are the row's own arithmetic, the gradient
    bytes are G + D float32 parameters, and the markdown holds the three tables."""
    import numpy as np

    from mat_jax.config import load_config
    from mat_jax.train import loop, programs, sharding

    out, md = tmp_path / "rows.jsonl", tmp_path / "tables.md"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_train.py"), "--cases", "demo:1", "--programs", "main"]
    cmd += ["--steps", "2", "--project", "2", "--json", str(out), "--markdown", str(md)]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "HOME": str(tmp_path)}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert row["platform"] == "cpu" and row["peak_source"].startswith("measured float32 matmul")
    assert row["images_per_s_device"] == pytest.approx(1 / row["step_s"])
    assert row["mfu"] == pytest.approx(row["xla_flops"] / row["step_s"] / row["peak_flops"])
    config = load_config(REPO / "configs/demo.py", ["train.global_batch_size=1", "train.mbstd_shards=1"])
    mesh = sharding.make_mesh(1, jax.devices()[:1])
    state = programs.build(loop.recipe_from_config(config, mesh), mesh).abstract_state
    n_params = sum(int(np.prod(x.shape)) for net in ("g", "d") for x in jax.tree.leaves(state[net]["params"]))
    assert row["grad_bytes"] == 4 * n_params
    text = md.read_text()
    for title in ("bench_train: measured", "Scaling: measured", "Projected accelerators (not measured)"):
        assert f"### {title}" in text
    assert "measured + measured" in text  # the 2-device all-reduce was measured on 2 simulated CPU devices
