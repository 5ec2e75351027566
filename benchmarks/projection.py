"""Multi-device projection of a measured single-device training step (`bench_train.py --project N ...`).

Data parallel with the per-device batch fixed: each iteration all-reduces the gradients of G and D. The masters are
float32, so the gradients are float32: 4 bytes per parameter, whatever train.compute_dtype is (checked on the
XLA:CPU compile of the demo config on 2 devices: its all-reduces are float32 under both compute dtypes). Step time
on N devices = the measured single-device step + the all-reduce time, with no overlap of the all-reduce and the
backward pass assumed (XLA can overlap them, so the step can be shorter).

  measured   the single-device step (bench_train.py) and, on this machine, the all-reduce of that many bytes over N
             of its devices (`measure_allreduce_s`: a jitted psum in shard_map over a Mesh; on CPU over N simulated
             devices, --xla_force_host_platform_device_count=N, i.e. memory traffic on this host's cores)
  projected  that all-reduce on a named chip (hardware.chip_allreduce_s: ring model with the table's bandwidth), and
             an accelerator's step = images x XLA FLOPs per image / (peak x an assumed MFU)

    python benchmarks/projection.py --allreduce-bytes 391000000 --devices 8   # one measurement (bench_train runs it)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import hardware
from report import Col

GOAL_IMAGES_PER_S = 40.0  # per device, 512 bf16, full iteration, H100/H200 class (issue 13)
OFFICIAL = "official PyTorch MAT: ~4 img/s per A100 (fp32; 8 GPUs, ~25 M images in ~9 days, maintainer)"


def measure_allreduce_s(nbytes: int, devices: list, repeats: int = 5) -> float:
    """Median seconds of a psum of nbytes of float32 over `devices` (each holding its own full copy, as data-parallel
    gradients), after one warm-up; raises if the sum is wrong."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    n, k = len(devices), max(int(nbytes) // 4, 1)
    mesh = Mesh(np.asarray(devices, dtype=object), ("d",))
    sh = NamedSharding(mesh, P("d"))
    x_NxK = jax.jit(lambda: jnp.ones((n, k), jnp.float32), out_shardings=sh)()
    psum = jax.jit(
        jax.shard_map(lambda v: jax.lax.psum(v, "d"), mesh=mesh, in_specs=P("d"), out_specs=P("d")), donate_argnums=0
    )
    x_NxK = jax.block_until_ready(psum(x_NxK))  # warm-up (compile); every element is now n
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        x_NxK = jax.block_until_ready(psum(x_NxK))  # n ** (i + 2) after repeat i: exact in float32 for small n
        times.append(time.perf_counter() - t0)
    want = float(n) ** (repeats + 1)
    got = float(x_NxK[0, 0]), float(x_NxK[-1, -1])
    if got != (want, want):
        raise RuntimeError(f"psum over {n} devices gave {got}, expected {want}")
    return float(np.median(times))


def allreduce_in_subprocess(nbytes: int, n: int, platform: str, env: dict) -> float | None:
    """Measured all-reduce seconds over n devices of this machine in a fresh process (CPU: n simulated devices);
    None where the machine has fewer than n devices of `platform`."""
    env = dict(env)
    if platform == "cpu":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
        env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, __file__, "--allreduce-bytes", str(nbytes), "--devices", str(n)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    if res.returncode == 3:  # too few devices
        return None
    if res.returncode or not lines:
        raise RuntimeError(f"all-reduce measurement on {n} devices failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return json.loads(lines[0][7:])["seconds"]


def scaling_rows(row: dict, ns: list[int], measured: dict, chip: hardware.Chip | None) -> list[dict]:
    """Per N: the measured single-device step of `row` plus the all-reduce of its gradient bytes, measured on this
    machine (measured[n], None if it could not be) or projected on `chip` (the machine's own chip, if in the table)."""
    out = []
    t1, b, nbytes = row["step_s"], row["batch_per_device"], row["grad_bytes"]
    for n in ns:
        ar_measured = measured.get(n)
        ar_projected = hardware.chip_allreduce_s(chip, nbytes, n) if chip is not None else None
        ar = ar_measured if ar_measured is not None else ar_projected
        step = None if ar is None else t1 + ar
        out.append(
            {
                "case": row["case"],
                "program": row["program"],
                "knobs": row.get("knobs"),
                "dtype": row["dtype"],
                "n": n,
                "step1_s": t1,
                "grad_mb": nbytes / 1e6,
                "ar_measured_s": ar_measured,
                "ar_projected_s": ar_projected,
                "step_n_s": step,
                "basis": "measured + measured" if ar_measured is not None else "measured + projected",
                "images_per_s_device": None if step is None else b / step,
                "images_per_s_total": None if step is None else n * b / step,
                "efficiency": None if step is None else t1 / step,
            }
        )
    return out


SCALING_COLS = [
    Col("case", "case"),
    Col("program", "program"),
    Col("knobs", "knobs"),
    Col("dtype", "dtype"),
    Col("N", "n"),
    Col("1-dev step s (measured)", "step1_s", ".3f"),
    Col("grad MB", "grad_mb", ".0f"),
    Col("all-reduce s (measured here)", "ar_measured_s", ".4f"),
    Col("all-reduce s (projected, ring)", "ar_projected_s", ".5f"),
    Col("step s on N", "step_n_s", ".3f"),
    Col("step s on N =", "basis"),
    Col("img/s/device", "images_per_s_device", ".3f"),
    Col("img/s total", "images_per_s_total", ".3f"),
    Col("scaling eff.", "efficiency", ".1%"),
]


def accelerator_rows(row: dict, chips: list[hardware.Chip], mfus: list[float], ns: list[int], dtype: str) -> list:
    """Projected per-device images/s in `dtype` of `row`'s step (its per-device batch, XLA FLOPs per image, gradient
    bytes) on each chip at each assumed MFU: compute = batch x FLOPs per image / (peak x MFU), plus the ring
    all-reduce on N chips (N = 1 always included)."""
    out, ns = [], sorted({1, *ns})
    b, flops_img, nbytes = row["batch_per_device"], row["gflop_per_image"] * 1e9, row["grad_bytes"]
    for chip in chips:
        peak = chip.peak(dtype)
        for mfu in mfus:
            compute = b * flops_img / (peak * mfu)
            r = {
                "case": row["case"],
                "program": row["program"],
                "knobs": row.get("knobs"),
                "dtype": dtype,
                "flops_from": f"{row['dtype']} run",
                "chip": chip.name,
                "peak_tflops": peak / 1e12,
                "gflop_per_image": flops_img / 1e9,
                "mfu": mfu,
                "mfu_for_goal": GOAL_IMAGES_PER_S * flops_img / peak,
                "step_s": compute,
            }
            for n in ns:
                ar = hardware.chip_allreduce_s(chip, nbytes, n) if n <= chip.node_size or chip.network_bw else None
                r[f"img_s_{n}"] = None if ar is None else b / (compute + ar)
            out.append(r)
    return out


def accelerator_cols(ns: list[int]) -> list[Col]:
    ns = sorted({1, *ns})
    return [
        Col("case", "case"),
        Col("program", "program"),
        Col("knobs", "knobs"),
        Col("dtype", "dtype"),
        Col("chip (projected)", "chip"),
        Col("peak TFLOP/s", "peak_tflops", ".1f"),
        Col("GFLOP/img (XLA)", "gflop_per_image", ".0f"),
        Col("FLOPs of", "flops_from"),
        Col("MFU assumed", "mfu", ".0%"),
        Col(f"MFU for {GOAL_IMAGES_PER_S:.0f} img/s", "mfu_for_goal", ".1%"),
        Col("step s (1 chip)", "step_s", ".4f"),
    ] + [Col(f"img/s/device, {n} chip{'s' * (n > 1)}", f"img_s_{n}", ".1f") for n in ns]


def main() -> int:
    ap = argparse.ArgumentParser(description="Measure one all-reduce (the child process of bench_train --project)")
    ap.add_argument("--allreduce-bytes", type=int, required=True)
    ap.add_argument("--devices", type=int, required=True)
    args = ap.parse_args()
    import jax

    devices = jax.local_devices()
    if len(devices) < args.devices:
        print(f"only {len(devices)} {devices[0].platform} device(s) here, {args.devices} asked", file=sys.stderr)
        return 3
    seconds = measure_allreduce_s(args.allreduce_bytes, devices[: args.devices])
    print("RESULT " + json.dumps({"seconds": seconds, "n": args.devices, "device_kind": devices[0].device_kind}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
