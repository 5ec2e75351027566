# mat-jax training image. One Dockerfile, the platform chosen at build time:
#   docker build --build-arg PLATFORM=cuda -t REGISTRY/mat-jax:cuda .   # jax[cuda12]: CUDA 12 + cuDNN as pip wheels
#   docker build --build-arg PLATFORM=tpu  -t REGISTRY/mat-jax:tpu .    # jax[tpu]: libtpu
#   docker build --build-arg PLATFORM=cpu  -t mat-jax:cpu .             # the pinned CPU jaxlib (development)
# The install steps are launch/install.sh (tested in a fresh venv by tests/test_launch.py, as no Docker engine runs
# in CI). CUDA needs no CUDA base image: jax[cuda12] brings its libraries as wheels, and the node (GKE GPU pool,
# nvidia-container-toolkit) supplies the driver. Configs are in the image at /opt/mat-jax/configs.
# Run: docker run --gpus all -v /data:/data REGISTRY/mat-jax:cuda train --config /opt/mat-jax/configs/demo.py \
#        --workdir /data/runs/demo   (launch/gke/ runs it on GKE; launch/README.md has every platform)
FROM python:3.11-slim-bookworm
ARG PLATFORM=cuda
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MAT_JAX_PLATFORM=${PLATFORM}
WORKDIR /opt/mat-jax
COPY pyproject.toml README.md ./
COPY mat_jax ./mat_jax
COPY launch ./launch
COPY configs ./configs
RUN PLATFORM=${PLATFORM} bash launch/install.sh /opt/mat-jax
ENTRYPOINT ["mat-jax"]
CMD ["--help"]
