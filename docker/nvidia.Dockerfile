# The image of one service of the mesh, for NVIDIA GPU nodes:
#   docker build -f docker/nvidia.Dockerfile --build-arg SERVICE=stt -t speechmesh-stt:0.1.0-cuda .
# The base holds the CUDA runtime with cuBLAS and cuDNN 9, which CTranslate2
# (faster-whisper) loads; torch, where an extra needs it, is PyPI's CUDA build of the
# pinned release and brings its own CUDA libraries. Only that service's extras and data
# wheels are installed (docker/services.txt). The build stage installs into a
# virtualenv; the runtime stage copies it and runs as an unprivileged user.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS build
ARG SERVICE
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python3 -m venv /opt/speechmesh
ENV PATH=/opt/speechmesh/bin:$PATH
COPY pyproject.toml setup.py README.md ./
COPY speechmesh ./speechmesh
COPY services ./services
COPY gateway ./gateway
COPY docker ./docker
RUN test -n "${SERVICE}" || { echo "give --build-arg SERVICE=<name> (docker/services.txt)" >&2; exit 1; } \
    && sh docker/install.sh "${SERVICE}"

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG SERVICE
LABEL org.opencontainers.image.title="speechmesh-${SERVICE}" \
      org.opencontainers.image.description="speechmesh ${SERVICE} service, NVIDIA CUDA" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 speechmesh \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin speechmesh \
    && install -d -o 10001 -g 10001 /var/cache/speechmesh
COPY --from=build /opt/speechmesh /opt/speechmesh
ENV PATH=/opt/speechmesh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HF_HOME=/var/cache/speechmesh/hf \
    SPEECHMESH_SERVICE=${SERVICE}
WORKDIR /tmp
USER 10001:10001
ENTRYPOINT ["speechmesh"]
CMD ["--help"]
