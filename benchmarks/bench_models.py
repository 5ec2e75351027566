"""Speed and memory of the MAT generator and discriminator forward on this machine.

Each case runs in a fresh subprocess so its peak RSS is its own. Prints a table: XLA compile time,
steady forward latency (median of --iters), peak RSS, XLA's FLOP count (counted with XLA's own convolutions,
see xla_flops.py) and the achieved GFLOP/s.

    python benchmarks/bench_models.py                 # G 256/512 at batch 1 and 4, D 256/512
    python benchmarks/bench_models.py --cases G256x1 G512x1 --iters 5

Reference (official PyTorch, eager, 2 threads, this machine kind): G 512 11.6 s / 1.70 GB,
G 256 3.68 s / 0.97 GB at batch 1 (../shared/reference/official-baseline.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

DEFAULT_CASES = ["G256x1", "G256x4", "G512x1", "G512x4", "D256x1", "D512x1"]


def _child(case: str, iters: int) -> dict:
    import resource
    import statistics
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np
    from xla_flops import reference_flops  # benchmarks/ (this script's folder)

    from mat_jax.models import Discriminator, Generator, MATConfig
    from mat_jax.weights.layout import abstract_variables

    net, rest = case[0], case[1:]
    res, batch = (int(v) for v in rest.split("x"))
    cfg = MATConfig(resolution=res)
    rng = np.random.default_rng(0)
    variables = jax.tree.map(
        lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32)), abstract_variables(cfg, net)
    )
    images = jnp.asarray(rng.uniform(-1, 1, (batch, res, res, 3)).astype(np.float32))
    masks = np.ones((batch, res, res, 1), np.float32)
    masks[:, res // 4 : 3 * res // 4, res // 8 : res // 2] = 0
    masks = jnp.asarray(masks)

    def build(c):  # the forward of `c` (c.conv: the convolution algorithm)
        if net == "G":
            return lambda v, i, m, w: Generator(c).apply(v, i, m, w, "const", "ones", method=Generator.synthesize)[:2]
        return lambda v, i, m: Discriminator(c).apply(v, i, m, i)

    fn = jax.jit(build(cfg))
    if net == "G":
        ws = jnp.asarray(rng.standard_normal((batch, cfg.num_ws, cfg.w_dim), np.float32))
        args = (variables, images, masks, ws)
    else:
        args = (variables, images, masks)
    rss_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
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
    flops = reference_flops(build(cfg.replace(conv="xla")), *args)  # after timing: traces it again
    return dict(
        case=case,
        compile_s=compile_s,
        fwd_s=step,
        fwd_min_s=min(times),
        flops=flops,
        gflops_per_s=flops / step / 1e9,
        rss_setup_gb=rss_setup,
        rss_peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES, help="NETRESxBATCH, e.g. G512x1 D256x1")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument(
        "--malloc",
        choices=["default", "hugepage"],
        default="default",
        help="glibc's default malloc (as a library user's process) or the huge-page tunable that "
        "`mat-jax train` sets (mat_jax/runtime.py)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(_child(args.child, args.iters)), flush=True)
        return 0
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if args.malloc == "hugepage":
        from mat_jax.runtime import malloc_env

        env = malloc_env(env) or env
    conv_env = " ".join(
        f"{k}={os.environ.get(k, d)}" for k, d in (("MAT_JAX_CONV_GRAD", "auto"), ("MAT_JAX_WINOGRAD", "1"))
    )
    print(f"malloc={args.malloc} {conv_env}")
    print(
        f"{'case':<8} {'compile s':>9} {'fwd s (med)':>11} {'fwd s (min)':>11} {'GFLOP':>8} {'GFLOP/s':>8} "
        f"{'RSS setup GB':>12} {'RSS peak GB':>11}"
    )
    for case in args.cases:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", case, "--iters", str(args.iters)],
            capture_output=True,
            text=True,
            env=env,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{case:<8} FAILED (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(lines[-1][7:])
        print(
            f"{case:<8} {r['compile_s']:>9.1f} {r['fwd_s']:>11.2f} {r['fwd_min_s']:>11.2f} {r['flops'] / 1e9:>8.1f} "
            f"{r['gflops_per_s']:>8.1f} {r['rss_setup_gb']:>12.2f} {r['rss_peak_gb']:>11.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
