"""Exception types of the converter.

Why a small hierarchy: the CLI prints any `ConversionError` as one line (it already names the file and
the key at fault) and exits non-zero, while genuine bugs still raise with a traceback.
"""

from __future__ import annotations

import pickle


class ConversionError(ValueError):
    """A checkpoint could not be read, validated or written; the message names the file and the key."""


class UnsafePickleError(ConversionError, pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list (nothing from the file was called)."""


class MissingTorchError(ConversionError, ImportError):
    """An operation needs the optional torch extra."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} needs PyTorch, which is an optional extra: pip install 'mat-jax[torch]'")
