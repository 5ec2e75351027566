"""Exception types of the converter: all are `weights.errors.CheckpointError` (a ValueError).

Why a small hierarchy: the CLI prints any `ConversionError` as one line (it already names the file and
the key at fault) and exits non-zero, while genuine bugs still raise with a traceback.
"""

from __future__ import annotations

import pickle

from mat_jax.weights.errors import CheckpointError

ConversionError = CheckpointError  # the converter's historical name for the one checkpoint error type


class UnsafePickleError(CheckpointError, pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list (nothing from the file was called)."""


class MissingTorchError(CheckpointError, ImportError):
    """An operation needs the optional torch extra."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} needs PyTorch, which is an optional extra: pip install 'mat-jax[torch]'")
