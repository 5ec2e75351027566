"""The step functions jitted with explicit in/out shardings for one mesh, cached so that every train() call in a
process (tests, resume) reuses the compiled programs."""

from __future__ import annotations

import dataclasses
import functools

import jax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mat_jax.train import sharding, steps


@dataclasses.dataclass(frozen=True)
class Programs:
    abstract_state: object  # ShapeDtypeStruct tree of the train state
    state_shardings: object  # NamedSharding tree matching it
    init: object  # key -> state (sharded)
    main_step: object  # (state, batch, vgg_params) -> (state, metrics)
    r1_step: object  # (state, batch) -> (state, metrics)
    mesh: Mesh


@functools.lru_cache(maxsize=8)
def build(recipe: steps.Recipe, mesh: Mesh, fsdp_min_size: int = 2**14) -> Programs:
    """Jitted init / main_step / r1_step for `recipe` on `mesh` (state donated, metrics replicated). Batches are
    {"image", "mask"} (+ "label" [B, c_dim] when recipe.model.c_dim > 0), split over the batch axes."""
    abstract = jax.eval_shape(functools.partial(steps.init_state, recipe), jax.random.key(0))
    state_sh = sharding.state_shardings(abstract, mesh, fsdp_min_size)
    repl = sharding.replicated(mesh)
    batch_sh = {k: sharding.batch_sharding(mesh) for k in sharding.batch_keys(recipe.model.c_dim)}
    init = jax.jit(functools.partial(steps.init_state, recipe), out_shardings=state_sh)
    # Accumulation: every micro-batch spread over all devices (the batch axes on the micro-batch dimension).
    micro = NamedSharding(mesh, P(None, sharding.BATCH_AXES)) if recipe.grad_accum_steps > 1 else None
    main = jax.jit(
        functools.partial(steps.main_step, recipe, micro_sharding=micro),
        in_shardings=(state_sh, batch_sh, repl),
        out_shardings=(state_sh, repl),
        donate_argnums=0,
    )
    r1 = jax.jit(
        functools.partial(steps.r1_step, recipe, micro_sharding=micro),
        in_shardings=(state_sh, batch_sh),
        out_shardings=(state_sh, repl),
        donate_argnums=0,
    )
    return Programs(abstract, state_sh, init, main, r1, mesh)


@functools.lru_cache(maxsize=8)
def build_sampler(recipe: steps.Recipe, mesh: Mesh, fsdp_min_size: int = 2**14):
    """(ema vars, images [N,R,R,3], masks [N,R,R,1], z [N,Z][, c [N,c_dim]]) -> (final, stage1), replicated:
    G_ema with psi = 1, constant noise and fixed SMM maps (official snapshot grids use noise_mode='const'). The
    c argument exists only for conditional models (c_dim > 0)."""
    ema_sh = build(recipe, mesh, fsdp_min_size).state_shardings["ema"]
    repl = sharding.replicated(mesh)
    G = recipe.generator

    def sample(ema, images, masks, z, *c):
        ws = G.apply(ema, z, *c, method="map")
        final, stage1, _ = G.apply(
            ema, images, masks, ws, "const", method="synthesize", rngs={"smm": jax.random.key(0)}
        )
        return final, stage1

    n_c = 1 if recipe.model.c_dim > 0 else 0
    return jax.jit(sample, in_shardings=(ema_sh, repl, repl, repl) + (repl,) * n_c, out_shardings=(repl, repl))
