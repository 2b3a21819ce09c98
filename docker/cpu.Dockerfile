# The image of one service of the mesh, for CPU nodes:
#   docker build -f docker/cpu.Dockerfile --build-arg SERVICE=stt -t speechmesh-stt:0.1.0 .
# It holds only what that service needs (docker/services.txt): a VAD image has no
# torch, and where an extra needs torch it is the pinned release's CPU build. The build
# stage installs into a virtualenv; the runtime stage copies it and runs as an
# unprivileged user, with nothing to write outside /tmp and the weights cache.
FROM python:3.11-slim-bookworm AS build
ARG SERVICE
# PyPI's torch is the multi-GB CUDA build: the constraint takes the CPU build of the
# same release from PyTorch's CPU index instead (only if an extra asks for torch).
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    PIP_CONSTRAINT=/src/docker/cpu-constraints.txt
WORKDIR /src
RUN python -m venv /opt/speechmesh
ENV PATH=/opt/speechmesh/bin:$PATH
COPY pyproject.toml setup.py README.md ./
COPY speechmesh ./speechmesh
COPY services ./services
COPY gateway ./gateway
COPY docker ./docker
RUN test -n "${SERVICE}" || { echo "give --build-arg SERVICE=<name> (docker/services.txt)" >&2; exit 1; } \
    && sh docker/install.sh "${SERVICE}"

FROM python:3.11-slim-bookworm
ARG SERVICE
LABEL org.opencontainers.image.title="speechmesh-${SERVICE}" \
      org.opencontainers.image.description="speechmesh ${SERVICE} service, CPU" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 speechmesh \
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
