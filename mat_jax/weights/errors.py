"""The one error type of checkpoint handling (reading, validating, converting, writing weights).

Why one type: every caller (the CLIs, `train.finetune`, the inpainter) prints a `CheckpointError` as one
line (its message already names the file and every key at fault) and exits non-zero, while genuine bugs
still raise with a traceback. `convert.errors.ConversionError` and `weights.layout.CheckpointLayoutError`
are this class under their older names; `UnsafePickleError`, `MissingTorchError` and `RunCheckpointError`
subclass it.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """Weights that could not be read, validated or written; the message names the file and the keys."""
