#!/usr/bin/env bash
# Cloud TPU VM pod slice: the same command on every worker; jax.distributed.initialize() auto-detects the pod
# (coordinator = worker 0, process id = the worker's index, from the TPU metadata server).
# Usage: TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
#        DRY_RUN=1 TPU_NAME=.. ZONE=.. launch/tpu_pod.sh ...   # print the gcloud command, run nothing
# The repository must be checked out and installed (PLATFORM=tpu launch/install.sh) at $REPO_DIR on every worker,
# and WORKDIR must be a path all workers share (a Filestore/NFS or gcsfuse mount of a GCS bucket).
# bf16 compute is a config switch: --config.train.compute_dtype=bfloat16 (float32 master weights).
# Preemption: SIGTERM -> checkpoint, exit 0.
set -euo pipefail
CONFIG=${1:?usage: launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
WORKDIR=${2:?usage: launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
shift 2
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
source "$(dirname "${BASH_SOURCE[0]}")/_run.sh"
REPO_DIR=${REPO_DIR:-'~/mat-jax'} # expanded on the worker
CACHE=${JAX_COMPILATION_CACHE_DIR:-$WORKDIR/jax_cache}
ARGS=$(printf ' %q' "$@")
run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command \
  "cd $REPO_DIR && env JAX_COMPILATION_CACHE_DIR=$CACHE python -m mat_jax.train --config $CONFIG --workdir $WORKDIR --distributed$ARGS"
