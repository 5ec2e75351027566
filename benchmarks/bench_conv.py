"""3x3 'same' convolutions of MAT's shapes on this machine: XLA's direct convolution with mat-jax's custom
gradients (mat_jax/kernels/conv.py) vs Winograd F(2x2,3x3) (mat_jax/kernels/winograd.py), the forward and
the backward alone (input and weight gradients of sum(y): XLA drops the unused forward), in milliseconds, with
the speed-ups and Winograd's effective GFLOP/s (direct-convolution FLOPs over time). Each path is timed in its own
jit; best of --iters.

  python benchmarks/bench_conv.py
  python benchmarks/bench_conv.py --shapes 2x256x256x180x180 1x512x512x180x180
"""

from __future__ import annotations

import argparse
import sys
import time

DEFAULT_SHAPES = [
    "2x256x256x180x180",
    "2x128x128x256x256",
    "2x64x64x512x512",
    "2x32x32x512x512",
    "2x256x256x64x64",
    "2x16x16x512x512",
]


def _best(fn, iters: int) -> float:
    fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _time_path(f, x, k, iters: int) -> tuple[float, float]:
    """(forward seconds, backward seconds) of conv f at x, k."""
    import jax
    import jax.numpy as jnp

    fwd = jax.jit(f)
    grads = jax.jit(jax.grad(lambda xx, kk: jnp.sum(f(xx, kk)), argnums=(0, 1)))
    return (
        _best(lambda: fwd(x, k).block_until_ready(), iters),
        _best(lambda: jax.block_until_ready(grads(x, k)), iters),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="*", default=DEFAULT_SHAPES, help="BxHxWxCINxCOUT")
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()

    import jax.numpy as jnp
    import numpy as np

    from mat_jax.kernels import conv, winograd

    print(
        f"{'BxHxWxCinxCout':>20s} {'direct fwd':>11s} {'wino fwd':>9s} {'speed-up':>8s} {'eff GFLOP/s':>11s} "
        f"{'direct bwd':>11s} {'wino bwd':>9s} {'speed-up':>8s} {'eff GFLOP/s':>11s}"
    )
    for spec in args.shapes:
        b, h, w, ci, co = map(int, spec.split("x"))
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((b, h, w, ci)), jnp.float32)
        k = jnp.asarray(rng.standard_normal((3, 3, ci, co)) / np.sqrt(9 * ci), jnp.float32)
        flop = 2.0 * b * h * w * ci * co * 9
        direct = lambda xx, kk: conv._conv(xx, kk, 1, ((1, 1), (1, 1)), False)  # noqa: E731  the custom-VJP direct path
        res = {name: _time_path(f, x, k, args.iters) for name, f in (("direct", direct), ("wino", winograd.conv3x3))}
        (df, db), (wf, wb) = res["direct"], res["wino"]
        print(
            f"{spec:>20s} {df * 1e3:9.1f}ms {wf * 1e3:7.1f}ms {df / wf:7.2f}x {flop / wf / 1e9:11.1f} "
            f"{db * 1e3:9.1f}ms {wb * 1e3:7.1f}ms {db / wb:7.2f}x {2 * flop / wb / 1e9:11.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
