"""python -m mat_jax.train --config configs/NAME.py --workdir DIR [...]: the same as `mat-jax train ...`.

An entry point, not part of the library (tests/test_import_floors.py puts it on the commands floor).
"""

import sys

from mat_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]], reexec=True))
