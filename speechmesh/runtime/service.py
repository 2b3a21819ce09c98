"""What a service package declares so the shared server can host it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from speechmesh.runtime.config import MeshConfig

if TYPE_CHECKING:
    from speechmesh.runtime.pool import ModelPool

# A grpc.aio.ServicerContext; grpc ships no type stubs, so it is Any to the type checker.
Context: TypeAlias = Any


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
