#!/usr/bin/env bash
# Render a JobSet manifest (launch/gke/jobset-{gpu,tpu}.yaml) and apply it with kubectl.
# Usage:
#   IMAGE=REGISTRY/mat-jax:cuda BUCKET=my-bucket launch/gke/submit.sh gpu CONFIG WORKDIR [--config.KEY=VALUE ...]
#   IMAGE=REGISTRY/mat-jax:tpu  BUCKET=my-bucket launch/gke/submit.sh tpu CONFIG WORKDIR [--config.KEY=VALUE ...]
#   DRY_RUN=1 ...   print the rendered manifest and the kubectl command, apply nothing
# CONFIG is a path inside the image (/opt/mat-jax/configs/NAME.py, see the Dockerfile) or on the bucket (/gcs/...);
# WORKDIR is on the bucket, mounted at /gcs in every pod (e.g. /gcs/runs/places512); the compilation cache goes to
# WORKDIR/jax_cache unless CACHE_DIR is set. Re-submitting the same command resumes from WORKDIR.
# Settings (environment): JOB_NAME (mat-jax), NUM_NODES (gpu: 2 nodes, tpu: 4 hosts), GPU_TYPE (nvidia-h100-80gb),
# GPUS_PER_NODE (8), TPU_TYPE (tpu-v5-lite-podslice), TPU_TOPOLOGY (4x4), CHIPS_PER_NODE (4), MAX_RESTARTS (3),
# COORDINATOR_PORT (8476), KUBECTL (kubectl).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../_run.sh"
USAGE="usage: launch/gke/submit.sh gpu|tpu CONFIG WORKDIR [--config.KEY=VALUE ...]"
KIND=${1:?$USAGE}
CONFIG=${2:?$USAGE}
WORKDIR=${3:?$USAGE}
shift 3
case "$KIND" in
  gpu) : "${NUM_NODES:=2}" ;;
  tpu) : "${NUM_NODES:=4}" ;;
  *)
    echo "launch/gke/submit.sh: the first argument must be gpu or tpu, got '$KIND'; $USAGE" >&2
    exit 2
    ;;
esac
: "${IMAGE:?set IMAGE to the mat-jax image (docker build --build-arg PLATFORM=$KIND ...)}"
: "${BUCKET:?set BUCKET to the GCS bucket mounted at /gcs (checkpoints, compilation cache)}"
export IMAGE BUCKET NUM_NODES
export JOB_NAME=${JOB_NAME:-mat-jax}
export CACHE_DIR=${CACHE_DIR:-$WORKDIR/jax_cache}
export GPU_TYPE=${GPU_TYPE:-nvidia-h100-80gb} GPUS_PER_NODE=${GPUS_PER_NODE:-8}
export TPU_TYPE=${TPU_TYPE:-tpu-v5-lite-podslice} TPU_TOPOLOGY=${TPU_TOPOLOGY:-4x4} CHIPS_PER_NODE=${CHIPS_PER_NODE:-4}
export MAX_RESTARTS=${MAX_RESTARTS:-3} COORDINATOR_PORT=${COORDINATOR_PORT:-8476}

json_list() { # the arguments as a JSON (= YAML flow) list of strings
  local out="" a
  for a in "$@"; do
    a=${a//\\/\\\\}
    a=${a//\"/\\\"}
    out+="${out:+, }\"$a\""
  done
  printf '[%s]' "$out"
}
# $(VAR) is expanded by Kubernetes from the container's env (the process id differs per pod).
TRAIN_ARGS=$(json_list --config "$CONFIG" --workdir "$WORKDIR" '--coordinator_address=$(COORDINATOR_ADDRESS)' \
  '--num_processes=$(NUM_PROCESSES)' '--process_id=$(PROCESS_ID)' "$@")
export TRAIN_ARGS
VARS='${JOB_NAME} ${IMAGE} ${BUCKET} ${NUM_NODES} ${CACHE_DIR} ${GPU_TYPE} ${GPUS_PER_NODE} ${TPU_TYPE} ${TPU_TOPOLOGY}
${CHIPS_PER_NODE} ${MAX_RESTARTS} ${COORDINATOR_PORT} ${TRAIN_ARGS}'
MANIFEST=$(envsubst "$VARS" <"$HERE/jobset-$KIND.yaml")
if dry_run; then
  printf '%s\n' "$MANIFEST"
  show "${KUBECTL:-kubectl}" apply -f -
else
  show "${KUBECTL:-kubectl}" apply -f -
  printf '%s\n' "$MANIFEST" | "${KUBECTL:-kubectl}" apply -f -
fi
