"""Rematerialisation (gradient checkpointing) of the generator's blocks: `MATConfig.remat`.

A block wrapped in `nn.remat` keeps only its inputs for the backward pass and recomputes its forward there, under
the policy `nothing_saveable`: no intermediate of the block is kept, not even matmul outputs. Why that policy: the
memory of MAT's training step is dominated by exactly those intermediates (the window-attention logits and
probabilities [B*nW, heads, N, N] in the transformer blocks; the modulated-convolution activations at full resolution
in the synthesis blocks), so `dots_saveable` would keep most of what remat is meant to drop. The price is one more
forward of each wrapped block per gradient (G's forward runs twice in Gmain's backward; D and Dmain's G forward,
which is not differentiated, are unaffected). Parameters, names and values are unchanged: remat is an execution
setting (models.config.EXECUTION_FIELDS), and the step's results equal the un-rematerialised step's up to float
rounding (tests/test_train_memory.py).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax

from mat_jax.models.config import REMAT_LEVELS

POLICY = jax.checkpoint_policies.nothing_saveable


def applies(remat: str, level: str) -> bool:
    """Whether blocks of `level` ('transformer' | 'all') are rematerialised under MATConfig.remat = `remat`."""
    return REMAT_LEVELS.index(remat) >= REMAT_LEVELS.index(level)


@functools.lru_cache(maxsize=None)
def _wrapped(cls: type, static_argnums: tuple[int, ...]) -> type:
    return nn.remat(cls, policy=POLICY, static_argnums=static_argnums)


def block(cls: type, remat: str, level: str, static_argnums: tuple[int, ...] = ()) -> type:
    """`cls`, or `cls` under nn.remat when `remat` reaches `level`. static_argnums count `self` as 0 (flax's
    convention) and must name every argument that is not an array pytree (shapes, mode strings)."""
    return _wrapped(cls, static_argnums) if applies(remat, level) else cls
