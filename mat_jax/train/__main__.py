"""python -m mat_jax.train --config configs/NAME.py --workdir DIR [--config.KEY=VALUE ...]"""

import sys

from mat_jax.runtime import reexec_with_hugepage_malloc
from mat_jax.train.cli import main

if __name__ == "__main__":
    reexec_with_hugepage_malloc()
    sys.exit(main(sys.argv))
