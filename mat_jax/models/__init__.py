"""MAT networks as pure-functional Flax linen modules (NHWC inside).

The package imports lazily: `import mat_jax.models.config` / `mat_jax.models.constants` need numpy only
(the layout table and the converter use them without jax or flax); `Generator` and `Discriminator` import
flax on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "MATConfig": "mat_jax.models.config",
    "nf": "mat_jax.models.config",
    "Generator": "mat_jax.models.generator",
    "Discriminator": "mat_jax.models.discriminator",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
