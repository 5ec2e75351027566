"""MAT networks as pure-functional Flax linen modules (NHWC inside)."""

from mat_jax.models.config import MATConfig, nf  # noqa: F401
from mat_jax.models.discriminator import Discriminator  # noqa: F401
from mat_jax.models.generator import Generator  # noqa: F401
