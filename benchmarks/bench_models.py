"""Speed and memory of the MAT generator and discriminator forward on any backend.

Each case runs in a fresh subprocess so its peak memory is its own. Prints a table per run: XLA compile time,
steady forward latency (median and min of --iters), images/s per device and per host, XLA's FLOPs per image
(counted with XLA's own convolutions, see xla_flops.py), achieved TFLOP/s, MFU against the device's peak for the
dtype (hardware.py: spec sheets, or the measured matmul peak on CPU) and peak memory (device peak on GPU/TPU, RSS on
CPU), for each case x --dtypes (bfloat16: weights and inputs cast, as train.compute_dtype does).

    python benchmarks/bench_models.py                 # G 256/512 at batch 1 and 4, D 256/512, float32
    python benchmarks/bench_models.py --cases G256x1 G512x1 --iters 5 --dtypes float32 bfloat16

Reference (official PyTorch, eager, 2 threads, this machine kind): G 512 11.6 s / 1.70 GB,
G 256 3.68 s / 0.97 GB at batch 1 (../shared/reference/official-baseline.md).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import hardware
import report
from report import Col

DEFAULT_CASES = ["G256x1", "G256x4", "G512x1", "G512x4", "D256x1", "D512x1"]


def _child(case: str, iters: int, dtype: str, peak: tuple[float, str] | None = None) -> dict:
    import statistics
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np
    from xla_flops import reference_flops  # benchmarks/ (this script's folder)

    from mat_jax.models import Discriminator, Generator, MATConfig
    from mat_jax.train.steps import COMPUTE_DTYPES, cast_floating
    from mat_jax.weights.layout import abstract_variables

    net, rest = case[0], case[1:]
    res, batch = (int(v) for v in rest.split("x"))
    cfg, dt = MATConfig(resolution=res), COMPUTE_DTYPES[dtype]
    rng = np.random.default_rng(0)
    variables = jax.tree.map(
        lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32)), abstract_variables(cfg, net)
    )
    images_BxRxRx3 = jnp.asarray(rng.uniform(-1, 1, (batch, res, res, 3)).astype(np.float32))
    masks_BxRxRx1 = np.ones((batch, res, res, 1), np.float32)  # 1 = known pixel
    masks_BxRxRx1[:, res // 4 : 3 * res // 4, res // 8 : res // 2] = 0
    inputs = (variables, images_BxRxRx3, jnp.asarray(masks_BxRxRx1))
    variables, images_BxRxRx3, masks_BxRxRx1 = cast_floating(inputs, dt)

    def build(c):  # the forward of `c` (c.conv: the convolution algorithm)
        if net == "G":
            return lambda v, i, m, w: Generator(c).apply(v, i, m, w, "const", "ones", method=Generator.synthesize)[:2]
        return lambda v, i, m: Discriminator(c).apply(v, i, m, i)

    fn = jax.jit(build(cfg))
    if net == "G":
        ws_BxNxW = jnp.asarray(rng.standard_normal((batch, cfg.num_ws, cfg.w_dim), np.float32)).astype(dt)
        args = (variables, images_BxRxRx3, masks_BxRxRx1, ws_BxNxW)
    else:
        args = (variables, images_BxRxRx3, masks_BxRxRx1)
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    devices = jax.devices()[:1]
    memory = hardware.peak_memory_fields(devices)
    machine = hardware.run_fields(devices, dtype, peak)
    flops = reference_flops(build(cfg.replace(conv="xla")), *args)  # after timing: traces it again
    return dict(
        case=case,
        compile_s=compile_s,
        fwd_s=step,
        fwd_min_s=min(times),
        xla_flops=flops,
        **machine,
        **memory,
        **report.speed(flops, step, batch, 1, machine["local_devices"], machine["peak_flops"]),
    )


MODEL_COLS = [
    Col("case", "case"),
    Col("dtype", "dtype"),
    Col("compile s", "compile_s", ".1f"),
    Col("fwd s (med)", "fwd_s", ".3f"),
    Col("fwd s (min)", "fwd_min_s", ".3f"),
    *report.SPEED_COLS,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES, help="NETRESxBATCH, e.g. G512x1 D256x1")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--dtypes", nargs="*", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--markdown", type=pathlib.Path, help="append the table here as markdown")
    parser.add_argument(
        "--malloc",
        choices=["default", "hugepage"],
        default="default",
        help="glibc's default malloc (as a library user's process) or the huge-page tunable that "
        "`mat-jax train` sets (mat_jax/runtime.py)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--peak", type=json.loads, help=argparse.SUPPRESS)  # [FLOP/s, source] for --child
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(_child(args.child, args.iters, args.dtypes[0], args.peak)), flush=True)
        return 0
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if args.malloc == "hugepage":
        from mat_jax.runtime import malloc_env

        env = malloc_env(env) or env
    conv_env = " ".join(
        f"{k}={os.environ.get(k, d)}" for k, d in (("MAT_JAX_CONV_GRAD", "auto"), ("MAT_JAX_WINOGRAD", "1"))
    )
    print(f"malloc={args.malloc} {conv_env}")
    peaks = hardware.peaks_in_subprocess(args.dtypes, env)  # one peak per dtype for the whole sweep
    rows = []
    for case, dtype in ((c, d) for c in args.cases for d in args.dtypes):
        cmd = [sys.executable, __file__, "--child", case, "--iters", str(args.iters), "--dtypes", dtype]
        cmd += ["--peak", json.dumps(peaks[dtype])]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{case} {dtype}: FAILED (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
            continue
        rows.append(json.loads(lines[-1][7:]))
        print(f"{case} {dtype}: {rows[-1]['fwd_s']:.3f} s, MFU {rows[-1]['mfu']:.1%}", flush=True)
    if not rows:
        return 1
    title, lines = f"bench_models: measured ({conv_env})", report.hardware_lines(rows)
    print(f"\n{title}\n" + "".join(f"  {x}\n" for x in lines) + report.table(rows, MODEL_COLS))
    if args.markdown:
        report.write_markdown(args.markdown, title, lines, report.table(rows, MODEL_COLS, markdown=True))
    return 0 if len(rows) == len(args.cases) * len(args.dtypes) else 1


if __name__ == "__main__":
    sys.exit(main())
