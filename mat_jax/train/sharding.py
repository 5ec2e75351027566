"""The device mesh and every sharding rule of the trainer, in one place (model code never mentions devices).

Mesh axes ("data", "fsdp"): the batch is split over both (every device holds a distinct slice of the batch); with
fsdp > 1 the parameters and optimiser moments are additionally split over "fsdp" (ZeRO-3 style): each large array is
sharded along its largest dimension divisible by the fsdp size, small ones stay replicated. GSPMD inserts the
gathers and reduce-scatters. `jax.sharding.Mesh` (Auto axes) is used on purpose: `jax.make_mesh` creates Explicit
axes in jax 0.10, which reject the window-partition reshapes of the generator.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

BATCH_AXES = ("data", "fsdp")


def make_mesh(fsdp: int = 1, devices: list | None = None) -> Mesh:
    """Mesh [n / fsdp, fsdp] over `devices` (default: all devices of all processes). fsdp = -1: all devices."""
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    fsdp = n if fsdp == -1 else int(fsdp)
    if fsdp < 1 or n % fsdp:
        raise ValueError(f"mesh.fsdp={fsdp} must be >= 1 (or -1) and divide the device count {n}")
    return Mesh(np.asarray(devices, dtype=object).reshape(n // fsdp, fsdp), BATCH_AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over every device."""
    return NamedSharding(mesh, P(BATCH_AXES))


def batch_keys(c_dim: int) -> tuple[str, ...]:
    """Keys of a device batch: image and mask, plus the one-hot "label" for a conditional model (c_dim > 0).
    Unconditional batches carry no label, so their programs are exactly the unconditional ones."""
    return ("image", "mask", "label") if c_dim > 0 else ("image", "mask")


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_global_batch(global_batch: int, mesh: Mesh, process_count: int, grad_accum_steps: int = 1) -> None:
    """Fail before step 0 when the batch (or each of its micro-batches) cannot be split evenly over devices and
    processes."""
    micro = global_batch // max(grad_accum_steps, 1)
    if grad_accum_steps > 1 and micro % mesh.size:
        raise ValueError(
            f"train.global_batch_size={global_batch} / train.grad_accum_steps={grad_accum_steps} = {micro} images per "
            f"micro-batch is not divisible by the {mesh.size} devices of the mesh"
        )
    if global_batch % mesh.size:
        raise ValueError(
            f"train.global_batch_size={global_batch} is not divisible by the {mesh.size} devices of "
            f"the mesh; use a multiple of {mesh.size}"
        )
    if global_batch % process_count:
        raise ValueError(f"train.global_batch_size={global_batch} is not divisible by {process_count} processes")


def param_spec(shape: tuple[int, ...], fsdp: int, min_size: int) -> P:
    """FSDP rule: shard the largest dimension divisible by `fsdp` of arrays with >= min_size elements."""
    if fsdp == 1 or math.prod(shape) < min_size:
        return P()
    dims = sorted(range(len(shape)), key=lambda i: -shape[i])
    for i in dims:
        if shape[i] % fsdp == 0:
            spec = [None] * len(shape)
            spec[i] = "fsdp"
            return P(*spec)
    return P()


def state_shardings(abstract_state, mesh: Mesh, fsdp_min_size: int = 2**14):
    """A NamedSharding for every leaf of the train state (parameters, EMA, optimiser moments, counters)."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(tuple(x.shape), fsdp, fsdp_min_size)), abstract_state)


def with_shardings(abstract_state, shardings):
    """ShapeDtypeStructs carrying the target shardings (restore target for orbax)."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract_state, shardings)


def global_batch_from_local(local: dict, mesh: Mesh) -> dict:
    """This process's slice of the global batch (numpy, leading axis = per-process batch) -> global jax arrays."""
    sh = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sh, np.asarray(v)) for k, v in local.items()}


def to_host(tree):
    """Replicated (or single-process) arrays -> numpy. Works in multi-process runs, where `jax.device_get` refuses
    arrays that span other processes' devices: a replicated array's local shard is the whole value."""

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if not x.is_fully_replicated:
                raise ValueError(f"to_host needs a replicated array, got sharding {x.sharding}")
            return np.asarray(x.addressable_shards[0].data)
        return np.asarray(jax.device_get(x))

    return jax.tree.map(get, tree)
