"""Which convolution algorithm runs: the one place the environment can override it.

Algorithms (`conv.conv2d(..., algorithm=)`, `MATConfig.conv`):
  'xla'       XLA's convolution and its own gradients (fast on GPU/TPU)
  'custom'    mat-jax's XLA:CPU gradients (im2col matmuls, polyphase strided input gradient)
  'winograd'  'custom' plus Winograd F(2x2,3x3) for the 3x3 stride-1 'same' convolutions where it applies
  'auto'      the process default: 'winograd' on the CPU backend, 'xla' elsewhere

User overrides of 'auto', read once (the first time a convolution is traced) and then fixed for the process, so a
compiled program never silently disagrees with a later setting:
  MAT_JAX_CONV_GRAD = auto | custom | xla   ('custom' forces mat-jax's gradients on any backend, 'xla' XLA's)
  MAT_JAX_WINOGRAD  = 1 | 0                 (0: no Winograd on the custom path)
An explicit algorithm (not 'auto') ignores both.
"""

from __future__ import annotations

import functools
import os

ALGORITHMS = ("auto", "xla", "custom", "winograd")
ENV_CONV_GRAD, ENV_WINOGRAD = "MAT_JAX_CONV_GRAD", "MAT_JAX_WINOGRAD"


def algorithm_from_env(environ: dict[str, str], backend: str) -> str:
    """What 'auto' means for these environment variables on this JAX backend ('cpu', 'gpu', 'tpu')."""
    grad = environ.get(ENV_CONV_GRAD, "auto")
    if grad not in ("auto", "custom", "xla"):
        raise ValueError(f"{ENV_CONV_GRAD}={grad!r}: expected 'auto', 'custom' or 'xla'")
    wino = environ.get(ENV_WINOGRAD, "1")
    if wino not in ("0", "1"):
        raise ValueError(f"{ENV_WINOGRAD}={wino!r}: expected '1' or '0'")
    if grad == "xla" or (grad == "auto" and backend != "cpu"):
        return "xla"
    return "winograd" if wino == "1" else "custom"


@functools.cache
def default_algorithm() -> str:
    """The process's 'auto' (environment overrides and backend read on the first call only)."""
    import jax

    return algorithm_from_env(dict(os.environ), jax.default_backend())


def check(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"convolution algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    return algorithm


def resolve(algorithm: str) -> str:
    """'xla' | 'custom' | 'winograd' for a requested algorithm ('auto' -> the process default)."""
    return default_algorithm() if check(algorithm) == "auto" else algorithm
