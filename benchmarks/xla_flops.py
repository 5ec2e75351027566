"""FLOPs of a JAX function as XLA counts them, with XLA's own convolutions.

On CPU, mat_jax/kernels/conv.py runs strided convolutions and convolution gradients as matmuls over row chunks
under `lax.scan`; XLA's cost analysis counts a loop body once, not once per iteration, so the compiled program's
FLOP count is far too low. The same function built with `MATConfig.conv='xla'` has the same arithmetic as plain
convolutions, which the analysis counts in full (the lowered, unoptimised HLO; nothing is compiled).
"""

from __future__ import annotations

import jax


def reference_flops(fn_with_xla_convs, *args) -> float:
    """FLOPs of `fn(*args)`, where fn was built from a config with `conv='xla'` (NaN if XLA reports none)."""
    cost = jax.jit(fn_with_xla_convs).lower(*args).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan"))) if cost else float("nan")
