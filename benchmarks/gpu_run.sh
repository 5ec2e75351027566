#!/usr/bin/env bash
# The accelerator benchmark as one script (a GPU machine, a TPU VM, or PLATFORM=cpu to prove it end to end):
# installs mat-jax with the platform's jax (launch/install.sh) unless this Python's jax already runs on it, then
# bench_train.py (full iteration: main + lazy R1, with the perceptual loss on random VGG19 weights; float32 and
# bfloat16; a batch sweep at 512 and 256; the multi-device projection) and bench_models.py (G forward), writing
# every table and log under $OUT.
# Usage: [PLATFORM=cuda|tpu|cpu] [OUT=./bench_out] [PYTHON=python] [CASES="p512:1 p512:8"] [PROGRAMS="main r1"]
#        [DTYPES="float32 bfloat16"] [PROJECT="2 4 8"] [MODEL_CASES="G512x1"] [STEPS=5] [PCP=0.1] [DRY_RUN=1]
#        benchmarks/gpu_run.sh
#   cuda|tpu  defaults: CASES="p512:1 p512:4 p512:8 p256:8", MODEL_CASES="G512x1 G512x8"
#   cpu       defaults: CASES="demo:1 demo:2", MODEL_CASES="G256x1" (small: minutes on 2 cores)
# Each case compiles once (XLA's persistent cache in $JAX_COMPILATION_CACHE_DIR, default <repo>/.jax_cache, makes a
# rerun cheaper); size CASES x PROGRAMS x DTYPES to the time at hand.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
source "$REPO/launch/_run.sh"
PLATFORM=${PLATFORM:-cuda}
PY=${PYTHON:-python}
OUT=${OUT:-./bench_out}
case "$PLATFORM" in
  cuda | tpu)
    BACKEND=${PLATFORM/cuda/gpu}
    CASES=${CASES:-"p512:1 p512:4 p512:8 p256:8"}
    MODEL_CASES=${MODEL_CASES:-"G512x1 G512x8"}
    ;;
  cpu)
    BACKEND=cpu
    CASES=${CASES:-"demo:1 demo:2"}
    MODEL_CASES=${MODEL_CASES:-"G256x1"}
    ;;
  *)
    echo "benchmarks/gpu_run.sh: PLATFORM=$PLATFORM is not one of cuda, tpu, cpu" >&2
    exit 2
    ;;
esac
PROGRAMS=${PROGRAMS:-"main r1"}
DTYPES=${DTYPES:-"float32 bfloat16"}
PROJECT=${PROJECT:-"2 4 8"}
STEPS=${STEPS:-5}
PCP=${PCP:-0.1}
mkdir -p "$OUT"
# A prepared machine may have no network: install only where this Python's jax does not already run on $BACKEND.
if ! "$PY" -c "import jax, sys; sys.exit(jax.default_backend() != '$BACKEND')" 2>/dev/null; then
  run env PLATFORM="$PLATFORM" PYTHON="$PY" bash "$REPO/launch/install.sh" "$REPO"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" # the benchmarks run this checkout's mat_jax
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$REPO/.jax_cache}
status=0 # a failed case still lets the other benchmark run; the script then exits non-zero
# shellcheck disable=SC2086  # CASES, PROGRAMS, DTYPES, PROJECT, MODEL_CASES are word lists
run "$PY" "$HERE/bench_train.py" --cases $CASES --programs $PROGRAMS --dtypes $DTYPES --steps "$STEPS" \
  --pcp "$PCP" --project $PROJECT --json "$OUT/bench_train.jsonl" --markdown "$OUT/bench_train.md" |
  tee "$OUT/bench_train.log" || status=1
# shellcheck disable=SC2086
run "$PY" "$HERE/bench_models.py" --cases $MODEL_CASES --dtypes $DTYPES --markdown "$OUT/bench_models.md" |
  tee "$OUT/bench_models.log" || status=1
dry_run || echo "tables: $OUT/bench_train.md $OUT/bench_models.md (exit $status)"
exit $status
