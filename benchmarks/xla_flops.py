"""FLOPs of a JAX function as XLA counts them, with XLA's own convolutions.

On CPU, mat_jax/models/conv.py runs strided convolutions and convolution gradients as matmuls over row chunks
under `lax.scan`; XLA's cost analysis counts a loop body once, not once per iteration, so the compiled program's
FLOP count is far too low. Tracing the same function again with `MAT_JAX_CONV_GRAD=xla` gives the same arithmetic
as plain convolutions, which the analysis counts in full (the lowered, unoptimised HLO; nothing is compiled).
"""

from __future__ import annotations

import os

import jax


def reference_flops(fn, *args) -> float:
    """FLOPs of `fn(*args)` with XLA's convolutions (NaN if XLA reports none)."""
    old = os.environ.get("MAT_JAX_CONV_GRAD")
    os.environ["MAT_JAX_CONV_GRAD"] = "xla"
    jax.clear_caches()  # the custom-VJP trace must not be reused
    try:
        cost = jax.jit(fn).lower(*args).cost_analysis()
    finally:
        if old is None:
            os.environ.pop("MAT_JAX_CONV_GRAD")
        else:
            os.environ["MAT_JAX_CONV_GRAD"] = old
        jax.clear_caches()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan"))) if cost else float("nan")
