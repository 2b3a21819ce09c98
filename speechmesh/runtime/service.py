"""What a service package declares so the shared server can host it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import grpc

from speechmesh.runtime.config import MeshConfig

if TYPE_CHECKING:
    from speechmesh.runtime.pool import ModelPool

# A grpc.aio.ServicerContext; grpc ships no type stubs, so it is Any to the type checker.
Context: TypeAlias = Any


class FrontEnd(Protocol):
    """Another protocol served in front of a server's own gRPC services (the gateway's
    HTTP): a client of the server over its local socket, started after the server and
    stopped at its drain."""

    address: str
    """Where it listens, as printed at start ("http://127.0.0.1:8000")."""

    async def stop(self, grace_s: float) -> None:
        """Stops accepting, lets requests in flight finish within grace_s, then closes."""


# Starts a front end, given the target of the server's local gRPC socket.
StartFrontEnd = Callable[[str], Awaitable[FrontEnd]]


@dataclass(frozen=True)
class ServiceSpec:
    """A service of the mesh: its config name, its gRPC services and how to add servicers."""

    name: str
    """Key under `services:` in the config, e.g. "vad"."""
    grpc_services: tuple[str, ...]
    """Full names of the gRPC services it serves (for health and reflection)."""
    add_servicers: Callable[[grpc.aio.Server, ModelPool, MeshConfig], None]
    hosts_models: bool = True
    """False for the gateway: it answers Models/ListModels for the mesh and sets the
    server's health from its backends."""
    front_end: Callable[[MeshConfig], StartFrontEnd | None] | None = None
    """The front end a config asks for (the gateway's HTTP), None when it asks for none;
    the server starts it after its gRPC port."""
