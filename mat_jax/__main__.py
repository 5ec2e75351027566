"""python -m mat_jax COMMAND ...: the same as the `mat-jax` script."""

import sys

from mat_jax.cli import main

if __name__ == "__main__":
    sys.exit(main())
