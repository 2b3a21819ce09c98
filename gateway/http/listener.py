"""Runs the HTTP app on uvicorn inside the gateway's own event loop.

The gateway's server starts it after its gRPC port (`ServiceSpec.front_end`) with the
target of its local socket, and stops it when it drains: the listener closes, requests
in flight finish within drain_grace_s. Signals stay with the mesh server, which drains
gRPC and HTTP together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Iterator

import uvicorn

from speechmesh.gateway.http.app import build_app
from speechmesh.gateway.http.mesh import Mesh
from speechmesh.runtime.auth import ApiKeyVerifier
from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.ports import port_holder
from speechmesh.runtime.server import local_channel

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The mesh server owns SIGTERM and SIGINT: it drains gRPC and HTTP together.
        yield


class HttpListener:
    """The running listener (a `FrontEnd` of the gateway's server)."""

    def __init__(self, server: _EmbeddedServer, task: asyncio.Task[None], mesh: Mesh, address: str):
        self._server = server
        self._task = task
        self._mesh = mesh
        self.address = address

    async def stop(self, grace_s: float) -> None:
        self._server.config.timeout_graceful_shutdown = max(math.ceil(grace_s), 1)
        self._server.should_exit = True
        await self._task
        await self._mesh.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        holder = port_holder(port) if port else None
        reason = f"in use by {holder}" if holder else error.strerror
        raise OSError(f"cannot listen for HTTP on {host}:{port} ({reason})") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def start_http(config: MeshConfig, local_target: str) -> HttpListener:
    """Starts the listener gateway.http describes, a client of local_target."""
    http = config.gateway.http
    verifier = ApiKeyVerifier.from_config(config.auth) if config.auth.enabled else None
    mesh = Mesh(local_channel(local_target), config)
    sock = _bind(http.host, http.port)
    app = build_app(mesh, verifier)
    server_config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, server_header=False
    )
    server = _EmbeddedServer(server_config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():  # startup failed: its exception says why
            await task
            raise OSError(f"the HTTP listener on {http.host}:{http.port} did not start")
        await asyncio.sleep(0.01)
    port = sock.getsockname()[1]
    log.info("gateway HTTP listening on %s:%d", http.host, port)
    return HttpListener(server, task, mesh, f"http://{http.host}:{port}")
