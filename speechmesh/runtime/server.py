"""Boots one service of the mesh as an asyncio gRPC server, and drains it on SIGTERM.

Every server gets the same plumbing: interceptors (request id, auth, limits, tracing,
metrics, error mapping), grpc.health.v1 with a status per model and per service,
server reflection, Models/ListModels, and a model pool that loads in the background.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime import registry
from speechmesh.runtime.auth import ApiKeyVerifier
from speechmesh.runtime.config import BackendTlsConfig, ConfigError, MeshConfig, TlsConfig
from speechmesh.runtime.interceptors import CallGuard, DrainState
from speechmesh.runtime.pool import ModelPool, ModelsServicer
from speechmesh.runtime.ports import port_holder
from speechmesh.runtime.service import FrontEnd
from speechmesh.runtime.telemetry import setup_telemetry

log = logging.getLogger(__name__)
HEALTH_SERVICE = "grpc.health.v1.Health"
MODELS_SERVICE = models_pb2.DESCRIPTOR.services_by_name["Models"].full_name
# What a front end's channel to its own server authenticates with: a Unix socket in a
# directory only this process's user can enter (gRPC's local credentials).
LOCAL_CREDENTIALS = grpc.LocalConnectionType.UDS


def local_channel(target: str) -> grpc.aio.Channel:
    """A channel to a server's local socket (the target a front end is given)."""
    credentials = grpc.local_channel_credentials(LOCAL_CREDENTIALS)
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    return grpc.aio.secure_channel(target, credentials, options=options)


def tls_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """Server credentials from the PEM files the config names."""

    def read(field: str, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as error:
            raise ConfigError(f"tls.{field} {path}: {error.strerror}") from None

    client_ca = None
    if tls.client_ca_file is not None:
        client_ca = read("client_ca_file", tls.client_ca_file)
    return grpc.ssl_server_credentials(
        [(read("key_file", tls.key_file), read("cert_file", tls.cert_file))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def client_credentials(tls: BackendTlsConfig, field: str) -> grpc.ChannelCredentials:
    """Credentials for calling the mesh's TLS servers: its CA, and the client certificate
    that mutual TLS asks for. `field` names the config section in errors."""
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ConfigError(f"{field}: cert_file and key_file go together")
    try:
        return grpc.ssl_channel_credentials(
            root_certificates=tls.ca_file.read_bytes(),
            private_key=tls.key_file.read_bytes() if tls.key_file else None,
            certificate_chain=tls.cert_file.read_bytes() if tls.cert_file else None,
        )
    except OSError as error:
        raise ConfigError(f"{field}: {error.filename}: {error.strerror}") from None


class MeshServer:
    """One gRPC server hosting one service of the mesh and its models."""

    def __init__(self, service: str, config: MeshConfig, *, port: int | None = None) -> None:
        self.spec = registry.service_spec(service)
        self.config = config
        service_config = config.service(service)
        self.host = service_config.host
        self.requested_port = service_config.port if port is None else port
        self.port = 0
        self.drain = DrainState()
        verifier = None
        if config.auth.enabled:
            verifier = ApiKeyVerifier.from_config(config.auth)
        limit = config.limits.max_message_bytes
        # A server without models (the gateway) relays streams as bytes: they hold no audio.
        stream_held_s = None if self.spec.hosts_models else 0.0
        self.server = grpc.aio.server(
            interceptors=[CallGuard(config.limits, self.drain, verifier, stream_held_s)],
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
                # Long-lived streams sit behind proxies that drop quiet connections, so
                # clients keep them alive with pings; accept pings every 10 s, even
                # between calls, instead of answering them with GOAWAY.
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ],
        )
        self.health = health.aio.HealthServicer()
        self.pool = ModelPool(
            service_config.models, self.health, self.spec.grpc_services, self.spec.name
        )
        self.front_end: FrontEnd | None = None
        self._local_dir: str | None = None

    async def start(self) -> int:
        """Binds, starts serving (models NOT_SERVING until loaded) and returns the port."""
        setup_telemetry(self.config.telemetry, f"speechmesh-{self.spec.name}")
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if self.spec.hosts_models:
            models_pb2_grpc.add_ModelsServicer_to_server(ModelsServicer(self.pool), self.server)
        self.spec.add_servicers(self.server, self.pool, self.config)
        names = (*self.spec.grpc_services, MODELS_SERVICE, HEALTH_SERVICE)
        reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), self.server)
        address = f"{self.host}:{self.requested_port}"
        try:
            if self.config.tls is None:
                self.port = self.server.add_insecure_port(address)
            else:
                self.port = self.server.add_secure_port(address, tls_credentials(self.config.tls))
        except RuntimeError as error:  # grpc's way of saying the bind failed
            holder = port_holder(self.requested_port) if self.requested_port else None
            reason = f"in use by {holder}" if holder else "in use?"
            raise OSError(f"cannot listen on {address} ({reason})") from error
        start_front_end = self.spec.front_end(self.config) if self.spec.front_end else None
        local_target = self._bind_local() if start_front_end else None
        await self.server.start()
        await self.pool.start()
        log.info("%s listening on %s:%d", self.spec.name, self.host, self.port)
        if start_front_end is not None and local_target is not None:
            self.front_end = await start_front_end(local_target)
        return self.port

    def _bind_local(self) -> str:
        """A Unix socket for the front end: the same server, interceptors and keys as the
        public port, whatever TLS that port asks of remote clients."""
        self._local_dir = tempfile.mkdtemp(prefix=f"speechmesh-{self.spec.name}-")
        target = f"unix:{self._local_dir}/grpc.sock"
        self.server.add_secure_port(target, grpc.local_server_credentials(LOCAL_CREDENTIALS))
        return target

    async def drain_and_stop(self) -> None:
        """Health NOT_SERVING, refuse new calls, let in-flight calls finish, then stop."""
        if self.drain.draining:
            return
        grace = self.config.drain_grace_s
        log.info(
            "%s draining (grace %.1f s, %d calls in flight)",
            self.spec.name,
            grace,
            self.drain.in_flight,
        )
        self.drain.draining = True
        self.pool.mark_draining()
        await self.health.enter_graceful_shutdown()
        # The front end stops taking requests; those in flight are gRPC calls in flight.
        stopping = [self.front_end.stop(grace)] if self.front_end is not None else []
        finished, *_ = await asyncio.gather(self.drain.wait_idle(grace), *stopping)
        if not finished:
            log.warning(
                "%s: %d calls still running after the grace period; cancelling them",
                self.spec.name,
                self.drain.in_flight,
            )
        await self.server.stop(grace=0 if not finished else 1.0)
        await self.pool.close()
        if self._local_dir is not None:
            shutil.rmtree(self._local_dir, ignore_errors=True)


async def run_servers(
    services: list[str],
    config: MeshConfig,
    *,
    port: int | None = None,
    on_ready: Callable[[list[MeshServer]], None] | None = None,
) -> None:
    """Runs the named services until SIGTERM or SIGINT, then drains them all."""
    servers = [MeshServer(name, config, port=port) for name in services]
    for server in servers:
        await server.start()
    if on_ready is not None:
        on_ready(servers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    forced: list[asyncio.Task[None]] = []

    def on_signal() -> None:
        # The first signal drains; a second one (an impatient Ctrl-C) cancels the calls
        # in flight, which ends the drain at once.
        if stop.is_set() and not forced:
            log.warning("second signal: cancelling the calls in flight")
            forced.extend(loop.create_task(server.server.stop(0)) for server in servers)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()
    await asyncio.gather(*(server.drain_and_stop() for server in servers))
