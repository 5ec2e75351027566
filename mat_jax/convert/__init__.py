"""Checkpoint conversion between the official MAT release files and mat-jax (official state_dict names).

numpy-only at import time: the `.pkl`, `.safetensors` and `.npz` paths work without torch; the `.pt`
handler imports torch lazily. Entry points:

    read_checkpoint(path, nets=None, resolution=None, fmt=None) -> Checkpoint(nets, resolution, source)
    write_checkpoint(path, {net: state}, fmt=None, dtype=None)
    load_official_pickle(path, net="G_ema") -> {official_name: np.ndarray}
    official_table(net, resolution) -> [Entry(official, shape, kind, collection, path, transform)]
    register_format(FormatHandler(...))       # the orbax directory format is registered by `formats` itself
"""

from mat_jax.convert.errors import ConversionError, MissingTorchError, UnsafePickleError
from mat_jax.convert.formats import (
    Checkpoint,
    FormatHandler,
    cast_state,
    handler_for,
    read_checkpoint,
    register_format,
    write_checkpoint,
)
from mat_jax.convert.nets import infer_layout, validate_state_dict
from mat_jax.convert.pickle_safe import load_official_pickle, load_official_pickle_nets
from mat_jax.weights.layout import Entry, official_table

__all__ = [
    "Checkpoint",
    "ConversionError",
    "Entry",
    "FormatHandler",
    "MissingTorchError",
    "UnsafePickleError",
    "cast_state",
    "handler_for",
    "infer_layout",
    "load_official_pickle",
    "load_official_pickle_nets",
    "official_table",
    "read_checkpoint",
    "register_format",
    "validate_state_dict",
    "write_checkpoint",
]
