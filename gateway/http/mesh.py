"""The HTTP routes' way into the mesh: the gateway's own gRPC services, over its local socket.

Each route is a client of the very server it runs in, so every HTTP request is a gRPC
call like any other: the same interceptor checks its key and limits, counts and traces
it, the same proxy picks a replica (and retries on another), the same orchestrator runs
graphs. What a request carries across: its `authorization` header, its
`x-request-id`, its W3C trace context, and the listener's deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import Request
from grpc_health.v1 import health_pb2_grpc

from speechmesh.conversion.v1 import conversion_pb2_grpc
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.requests import REQUEST_ID_METADATA
from speechmesh.stt.v1 import stt_pb2_grpc
from speechmesh.tts.v1 import tts_pb2_grpc
from speechmesh.vad.v1 import vad_pb2_grpc

FORWARDED_HEADERS = ("authorization", REQUEST_ID_METADATA, "traceparent", "tracestate")


class Mesh:
    """Stubs of every service the routes call, and the options of each call."""

    def __init__(self, channel: grpc.aio.Channel, config: MeshConfig) -> None:
        self.channel = channel
        self.config = config
        self.aliases = dict(config.gateway.http.model_aliases)
        self.timeout_s = config.gateway.http.timeout_s
        self.tts = tts_pb2_grpc.TextToSpeechStub(channel)
        self.stt = stt_pb2_grpc.SpeechToTextStub(channel)
        self.vad = vad_pb2_grpc.VoiceActivityStub(channel)
        self.encoder = conversion_pb2_grpc.SpeakerEncoderStub(channel)
        self.conversion = conversion_pb2_grpc.VoiceConversionStub(channel)
        self.restoration = conversion_pb2_grpc.AudioRestorationStub(channel)
        self.orchestrator = orchestrator_pb2_grpc.OrchestratorStub(channel)
        self.models = models_pb2_grpc.ModelsStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    def options(self, request: Request) -> dict[str, Any]:
        """The deadline and metadata of the gRPC call behind an HTTP request."""
        headers = request.headers
        metadata = [(name, headers[name]) for name in FORWARDED_HEADERS if name in headers]
        return {"timeout": self.timeout_s, "metadata": metadata}

    def model_id(self, name: str) -> str:
        """The mesh model a client's name stands for (an alias, or the id itself)."""
        return self.aliases.get(name, name)

    async def model_info(self, request: Request, model_id: str) -> models_pb2.ModelInfo | None:
        """What the mesh says about a model; None when it serves no such model."""
        listed = await self.models.ListModels(
            models_pb2.ListModelsRequest(), **self.options(request)
        )
        return next((info for info in listed.models if info.id == model_id), None)

    async def close(self) -> None:
        await self.channel.close(grace=None)


async def opened(call: Any) -> AsyncIterator[Any]:
    """A streaming call's responses, its first one already received: a call that fails at
    once (unknown model, bad input) raises here, while an HTTP status can still say so.
    Leaving the iterator early (the client went away) cancels the call."""
    iterator = aiter(call)
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        first = None
    except BaseException:
        call.cancel()
        raise

    async def rest() -> AsyncIterator[Any]:
        try:
            if first is None:
                return
            yield first
            async for response in iterator:
                yield response
        finally:
            call.cancel()  # a no-op once the call has ended

    return rest()
