#!/usr/bin/env bash
# Install mat-jax and the jax build of one platform into a Python environment: the Dockerfile's RUN step, also
# usable on a bare VM (TPU VM workers, SLURM nodes) and tested in a fresh venv (tests/test_launch.py).
# Usage: PLATFORM=cuda|tpu|cpu [PYTHON=python] [DRY_RUN=1] launch/install.sh [REPO_DIR]
#   cpu   the CPU jaxlib that pyproject.toml pins (development, CI)
#   cuda  + jax[cuda12] at the same jax version (CUDA 12 and cuDNN come as pip wheels; the node supplies the driver)
#   tpu   + jax[tpu] at the same jax version (libtpu)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/_run.sh"
PLATFORM=${PLATFORM:-cuda}
REPO_DIR=${1:-$(dirname "$HERE")}
PY=${PYTHON:-python}
case "$PLATFORM" in
  cpu) EXTRA="" ;;
  cuda) EXTRA="cuda12" ;;
  tpu) EXTRA="tpu" ;;
  *)
    echo "launch/install.sh: PLATFORM=$PLATFORM is not one of cpu, cuda, tpu" >&2
    exit 2
    ;;
esac
run "$PY" -m pip install --no-cache-dir "$REPO_DIR"
if [[ -n "$EXTRA" ]]; then
  # The accelerator plugin at exactly the jax version pyproject.toml resolved (a newer jax[...] would upgrade jax).
  JAX_VERSION=$("$PY" -c "import importlib.metadata as m; print(m.version('jax'))" 2>/dev/null || echo "JAX_VERSION")
  run "$PY" -m pip install --no-cache-dir "jax[$EXTRA]==$JAX_VERSION"
fi
run "$PY" -c "import jax, mat_jax; print('mat-jax', mat_jax.__file__, 'jax', jax.__version__, jax.default_backend())"
