"""python -m mat_jax.train --config configs/NAME.py --workdir DIR [--config.KEY=VALUE ...]"""

import sys

from mat_jax.train.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
