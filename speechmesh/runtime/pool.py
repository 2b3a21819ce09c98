"""The models a server hosts: loads them in the background and reports their readiness.

Each model gets an engine, a state (LOADING → READY or FAILED, DRAINING at the end),
a batcher, and a grpc.health.v1 entry `model/<id>` that turns SERVING only once the
model is loaded and warmed up. Servicers ask the pool for a model by id and task;
the pool also answers Models/ListModels.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grpc_health.v1 import health, health_pb2

from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime import registry, weights
from speechmesh.runtime.batcher import DynamicBatcher
from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.engine import Engine, ModelDescription
from speechmesh.runtime.errors import FailedPrecondition, NotFound, SpeechmeshError, Unavailable
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context

log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def model_health_name(model_id: str) -> str:
    """The grpc.health.v1 service name that reports one model's readiness."""
    return f"model/{model_id}"


@dataclass
class HostedModel:
    """A configured model and where it stands."""

    config: ModelConfig
    engine: Engine
    state: models_pb2.ModelState.ValueType = models_pb2.MODEL_STATE_LOADING
    state_message: str = "loading"
    description: ModelDescription = field(default_factory=ModelDescription)
    batcher: DynamicBatcher[Any, Any] | None = None

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def backlogged(self) -> bool:
        """Whether work is waiting for the model: optional work should wait its turn."""
        return self.batcher is not None and self.batcher.pending > 0

    async def run(self, item: Any) -> Any:
        """Runs one item through the model's batcher."""
        assert self.batcher is not None, "run() on a model that is not READY"
        return await self.batcher.submit(item)


class ModelPool:
    """All models of one server."""

    def __init__(
        self,
        configs: Sequence[ModelConfig],
        health_servicer: health.aio.HealthServicer,
        serves: tuple[str, ...] | None = None,
        server: str = "this",
    ):
        """`serves`: the gRPC services of the server; a model of a family that none of
        them serves is refused at start, since no call could ever reach it."""
        self._health = health_servicer
        self._models: dict[str, HostedModel] = {}
        for config in configs:
            engine = registry.engine_class(config.family)(config)
            if serves is not None and engine.service not in serves:
                raise FailedPrecondition(
                    f"model {config.id!r}: family {config.family!r} is served by "
                    f"{engine.service}, which the {server} server does not serve "
                    f"(it serves {', '.join(serves)}); declare it under the service "
                    "that serves it"
                )
            if config.parallel_batches > 1 and not engine.concurrent_batches:
                raise FailedPrecondition(
                    f"model {config.id!r}: family {config.family!r} runs one batch at a "
                    f"time; parallel_batches must be 1 (got {config.parallel_batches})"
                )
            self._models[config.id] = HostedModel(config, engine)
        self._load_task: asyncio.Task[None] | None = None
        self.all_loaded = asyncio.Event()

    @property
    def health(self) -> health.aio.HealthServicer:
        return self._health

    @property
    def models(self) -> list[HostedModel]:
        return list(self._models.values())

    def services(self) -> set[str]:
        return {m.engine.service for m in self._models.values()}

    async def start(self) -> None:
        """Marks everything NOT_SERVING, then loads models in the background."""
        for model in self._models.values():
            await self._health.set(model_health_name(model.id), NOT_SERVING)
        await self._refresh_service_health()
        self._load_task = asyncio.get_running_loop().create_task(self._load_all())

    async def _load_all(self) -> None:
        loop = asyncio.get_running_loop()
        for model in self._models.values():
            started = time.perf_counter()
            try:
                await loop.run_in_executor(None, _load_and_warm, model.engine)
            except Exception as error:
                model.state = models_pb2.MODEL_STATE_FAILED
                model.state_message = str(error)
                log.error("model %s failed to load: %s", model.id, error)
                continue
            model.description = model.engine.describe()
            model.batcher = DynamicBatcher(
                model.id,
                model.engine.run_batch,
                max_batch_size=model.config.max_batch_size,
                max_wait_s=model.config.max_batch_wait_ms / 1000,
                max_queue_size=model.config.max_queue_size,
                parallel=model.config.parallel_batches,
            )
            model.batcher.start()
            model.state, model.state_message = models_pb2.MODEL_STATE_READY, ""
            await self._health.set(model_health_name(model.id), SERVING)
            log.info("model %s ready in %.2f s", model.id, time.perf_counter() - started)
        await self._refresh_service_health()
        self.all_loaded.set()

    async def _refresh_service_health(self) -> None:
        # A service is SERVING when every model it hosts is READY (optional ones aside:
        # they report their own state); the server ("") when every service is.
        all_ready = True
        for service in self.services():
            ready = all(
                m.state == models_pb2.MODEL_STATE_READY
                for m in self._models.values()
                if m.engine.service == service and not m.config.optional
            )
            all_ready &= ready
            await self._health.set(service, SERVING if ready else NOT_SERVING)
        if self._models:  # a server without models (the gateway) sets its own
            await self._health.set("", SERVING if all_ready else NOT_SERVING)

    def default_for(self, service: str) -> HostedModel | None:
        """The model requests of `service` that name none go to: the one configured as
        default, else the first configured."""
        candidates = [m for m in self._models.values() if m.engine.service == service]
        return next((m for m in candidates if m.config.default), next(iter(candidates), None))

    def get(self, model_id: str, service: str) -> HostedModel:
        """The READY model `model_id` of `service` (its default when empty), or a clear error."""
        candidates = [m for m in self._models.values() if m.engine.service == service]
        if not model_id:
            default = self.default_for(service)
            if default is None:
                raise NotFound(f"this server hosts no model for {service}")
            model = default
        else:
            found = self._models.get(model_id)
            if found is None or found.engine.service != service:
                available = ", ".join(m.id for m in candidates) or "none"
                raise NotFound(f"model {model_id!r} is not served here (available: {available})")
            model = found
        if model.state == models_pb2.MODEL_STATE_LOADING:
            raise Unavailable(f"model {model.id!r} is still loading; retry shortly")
        if model.state == models_pb2.MODEL_STATE_FAILED:
            raise FailedPrecondition(f"model {model.id!r} failed to load: {model.state_message}")
        if model.state == models_pb2.MODEL_STATE_DRAINING:
            raise Unavailable(f"model {model.id!r} is draining: the server is shutting down")
        return model

    def mark_draining(self) -> None:
        for model in self._models.values():
            if model.state == models_pb2.MODEL_STATE_READY:
                model.state = models_pb2.MODEL_STATE_DRAINING
                model.state_message = "server is shutting down"

    async def close(self) -> None:
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        for model in self._models.values():
            if model.batcher is not None:
                await model.batcher.close()
            model.engine.close()

    def info(self, model: HostedModel) -> models_pb2.ModelInfo:
        description = model.description
        return models_pb2.ModelInfo(
            id=model.id,
            family=model.config.family,
            tasks=list(model.engine.tasks),
            languages=list(description.languages or model.config.languages),
            voices=[
                models_pb2.Voice(
                    id=v.id,
                    display_name=v.display_name,
                    languages=list(v.languages),
                    description=v.description,
                )
                for v in description.voices
            ],
            native_sample_rate_hz=description.native_sample_rate_hz,
            state=model.state,
            state_message=model.state_message,
            service=model.engine.service,
            max_batch_size=model.config.max_batch_size,
            device=model.config.device,
            is_default=self.default_for(model.engine.service) is model,
            embedding_family=model.engine.embedding_family,
            accepted_embedding_families=list(model.engine.accepted_embedding_families),
        )


def _load_and_warm(engine: Engine) -> None:
    try:
        with weights.downloads_allowed(not engine.config.optional):
            engine.load()
        engine.warmup()
    except SpeechmeshError:
        raise
    except Exception as error:  # a library's own error: keep its text, say where it came from
        raise FailedPrecondition(f"{type(error).__name__}: {error}") from error


class ModelsServicer(models_pb2_grpc.ModelsServicer):
    """Models/ListModels for one server."""

    def __init__(self, pool: ModelPool) -> None:
        self._pool = pool

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        models = sorted(self._pool.models, key=lambda m: m.id)
        if request.task:
            models = [m for m in models if request.task in m.engine.tasks]
        return models_pb2.ListModelsResponse(
            request_id=request_id(request.request_id),
            models=[self._pool.info(m) for m in models],
        )
