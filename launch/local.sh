#!/usr/bin/env bash
# One machine. Usage:
#   launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]            # one process, all local devices
#   NUM_PROCESSES=2 CPU_DEVICES=4 launch/local.sh CONFIG WORKDIR ...   # N local processes (multi-host code path,
#                                                                      # jax.distributed on 127.0.0.1, gloo on CPU)
#   DRY_RUN=1 launch/local.sh ...                                      # print the commands, run nothing
# Re-running the same command resumes from WORKDIR. Ctrl-C / SIGTERM: checkpoint at the next step, exit 0.
set -euo pipefail
CONFIG=${1:?usage: launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
WORKDIR=${2:?usage: launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
shift 2
source "$(dirname "${BASH_SOURCE[0]}")/_run.sh"
PY=${PYTHON:-python}
ENV=(
  "JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$PWD/.jax_cache}" # reuse compiles across restarts
  "GLIBC_TUNABLES=${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" # huge-page malloc (mat_jax/runtime.py)
)
NUM_PROCESSES=${NUM_PROCESSES:-1}
if [[ "$NUM_PROCESSES" == 1 ]]; then
  show env "${ENV[@]}" "$PY" -m mat_jax.train --config "$CONFIG" --workdir "$WORKDIR" "$@"
  dry_run || exec env "${ENV[@]}" "$PY" -m mat_jax.train --config "$CONFIG" --workdir "$WORKDIR" "$@"
  exit 0
fi
PORT=${PORT:-$((20000 + RANDOM % 20000))}
EXTRA=()
if [[ -n "${CPU_DEVICES:-}" ]]; then EXTRA+=("--num_cpu_devices=$CPU_DEVICES"); fi
trap 'kill -TERM "${PIDS[@]}" 2>/dev/null || true' TERM INT # forward preemption to every process
for ((i = 0; i < NUM_PROCESSES; i++)); do
  start env "${ENV[@]}" "$PY" -m mat_jax.train --config "$CONFIG" --workdir "$WORKDIR" \
    --coordinator_address="127.0.0.1:$PORT" --num_processes="$NUM_PROCESSES" --process_id="$i" "${EXTRA[@]}" "$@"
done
status=0
for p in "${PIDS[@]}"; do wait "$p" || status=$?; done
exit "$status"
