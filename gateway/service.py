"""The gateway: one address for the whole mesh.

It forwards every service's RPCs to the replica that hosts the requested model
(`proxy.py`), answers Models/ListModels for the whole mesh, runs orchestrator graphs,
and keeps the server's health in line with its backends: the server ("") is SERVING
while some backend replica is reachable, and each proxied service name is SERVING
while a reachable replica serves a READY model of it.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health, health_pb2

from speechmesh.gateway.access import BackendAccess
from speechmesh.gateway.orchestrator import OrchestratorServicer
from speechmesh.gateway.proxy import ProxyHandler, proxied_services
from speechmesh.gateway.routing import Router
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.pool import ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context, FrontEnd, ServiceSpec, StartFrontEnd

log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HEALTH_POLL_S = 0.2


class MeshModelsServicer(models_pb2_grpc.ModelsServicer):
    """ListModels over every reachable replica; a model on several replicas is listed once."""

    def __init__(self, router: Router) -> None:
        self._router = router

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        await self._router.refreshed.wait()
        merged: dict[str, models_pb2.ModelInfo] = {}
        for replica in self._router.replicas():
            if not replica.healthy:
                continue
            for info in replica.models.values():
                if request.task and request.task not in info.tasks:
                    continue
                best = merged.get(info.id)
                # READY on any replica means READY for a caller of the gateway.
                if best is None or (
                    info.state == models_pb2.MODEL_STATE_READY
                    and best.state != models_pb2.MODEL_STATE_READY
                ):
                    merged[info.id] = info
        return models_pb2.ListModelsResponse(
            request_id=request_id(request.request_id),
            models=[merged[key] for key in sorted(merged)],
        )


async def _track_health(router: Router, servicer: health.aio.HealthServicer) -> None:
    services = proxied_services()
    # grpc's health servicer starts with "" SERVING; nothing is known before a refresh.
    await servicer.set("", NOT_SERVING)
    previous: dict[str, int] = {"": NOT_SERVING}
    await router.refreshed.wait()
    while True:
        served = router.services()
        statuses = {name: SERVING if name in served else NOT_SERVING for name in services}
        statuses[""] = SERVING if any(r.healthy for r in router.replicas()) else NOT_SERVING
        for name, status in statuses.items():
            if previous.get(name) != status:
                await servicer.set(name, status)
        previous = statuses
        # Cheap, and quick to notice a replica that a failed call marked down.
        await asyncio.sleep(HEALTH_POLL_S)


def _add_servicers(server: grpc.aio.Server, pool: ModelPool, config: MeshConfig) -> None:
    router = Router(
        config.backends(), config.gateway.refresh_interval_s, BackendAccess.from_config(config)
    )
    router.start()
    loop = asyncio.get_running_loop()
    # The tasks live as long as the server's event loop.
    _BACKGROUND.add(loop.create_task(_track_health(router, pool.health)))
    models_pb2_grpc.add_ModelsServicer_to_server(MeshModelsServicer(router), server)
    orchestrator_pb2_grpc.add_OrchestratorServicer_to_server(
        OrchestratorServicer(router, config), server
    )
    server.add_generic_rpc_handlers((ProxyHandler(router, config.limits.stream_idle_timeout_s),))


_BACKGROUND: set[asyncio.Task[None]] = set()


def _http(config: MeshConfig) -> StartFrontEnd | None:
    """The OpenAI-compatible HTTP listener, when gateway.http.enabled."""
    if not config.gateway.http.enabled:
        return None
    # Imported only when on: FastAPI and uvicorn are not needed otherwise.
    from speechmesh.gateway.http.listener import start_http

    async def start(local_target: str) -> FrontEnd:
        return await start_http(config, local_target)

    return start


SERVICE = ServiceSpec(
    name="gateway",
    grpc_services=(
        *proxied_services(),
        orchestrator_pb2.DESCRIPTOR.services_by_name["Orchestrator"].full_name,
    ),
    add_servicers=_add_servicers,
    hosts_models=False,
    front_end=_http,
)
