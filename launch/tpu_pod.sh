#!/usr/bin/env bash
# Cloud TPU VM pod slice: the same command on every worker; jax.distributed.initialize() auto-detects the pod.
# Usage: TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
# The repository must be checked out (and installed: pip install -e .) at $REPO_DIR on every worker, and WORKDIR
# must be a path all workers share (e.g. a Filestore/NFS or gcsfuse mount). bf16 compute is a config switch:
# --config.train.compute_dtype=bfloat16 (float32 master weights). Preemption: SIGTERM -> checkpoint, exit 0.
set -euo pipefail
CONFIG=${1:?usage: launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
WORKDIR=${2:?usage: launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
shift 2
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
REPO_DIR=${REPO_DIR:-~/mat-jax}
ARGS=$(printf ' %q' "$@")
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command \
  "cd $REPO_DIR && JAX_COMPILATION_CACHE_DIR=$WORKDIR/jax_cache python -m mat_jax.train --config $CONFIG --workdir $WORKDIR --distributed$ARGS"
