"""Forwards every RPC of the mesh's services to a replica that hosts the requested model.

Messages pass through as bytes; the gateway parses only what routing needs (the
request's `model`, or the stream's first message's `config.model`). The client's
deadline (its remaining time), cancellation, API key, request id and trace context go
with the call; the backend's status, details (rich error details included) and
trailing metadata come back unchanged. A unary or server-streaming call that fails
with UNAVAILABLE before any response is retried on another replica. Streams are
pumped message by message, each write awaited, so gRPC flow control reaches from the
client to the backend and nothing buffers without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor
from opentelemetry import propagate

from speechmesh.conversion.v1 import conversion_pb2
from speechmesh.gateway.access import AUTHORIZATION, BackendAccess
from speechmesh.gateway.routing import Replica, Router
from speechmesh.indextts.v1 import indextts_pb2
from speechmesh.runtime.errors import IdleTimeout, InvalidArgument
from speechmesh.runtime.requests import REQUEST_ID_METADATA, request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.streams import close_requests, write_request
from speechmesh.stt.v1 import stt_pb2
from speechmesh.tts.v1 import tts_pb2
from speechmesh.vad.v1 import vad_pb2

PROXIED_FILES: tuple[FileDescriptor, ...] = (
    vad_pb2.DESCRIPTOR,
    stt_pb2.DESCRIPTOR,
    tts_pb2.DESCRIPTOR,
    conversion_pb2.DESCRIPTOR,
    indextts_pb2.DESCRIPTOR,
)


@dataclass(frozen=True)
class Route:
    """One proxied method."""

    path: str  # /package.Service/Method
    service: str
    request_class: Any
    request_streaming: bool
    response_streaming: bool
    has_model_field: bool  # the request names its model itself (else its config does)

    def model_of(self, raw: bytes) -> str:
        message = self.request_class.FromString(raw)
        if self.has_model_field:
            return str(message.model)
        if message.WhichOneof("request") == "config":
            return str(message.config.model)
        if self.request_streaming:
            raise InvalidArgument("config", "the first message must carry the config")
        return ""


def _route(method: MethodDescriptor) -> Route:
    service = method.containing_service.full_name
    return Route(
        path=f"/{service}/{method.name}",
        service=service,
        request_class=message_factory.GetMessageClass(method.input_type),
        request_streaming=method.client_streaming,
        response_streaming=method.server_streaming,
        has_model_field="model" in method.input_type.fields_by_name,
    )


def routes() -> dict[str, Route]:
    table = {}
    for file in PROXIED_FILES:
        for service in file.services_by_name.values():
            for method in service.methods:
                route = _route(method)
                table[route.path] = route
    return table


def proxied_services() -> tuple[str, ...]:
    return tuple(s.full_name for f in PROXIED_FILES for s in f.services_by_name.values())


def outgoing_metadata(context: Context, access: BackendAccess) -> list[tuple[str, str]]:
    """What the backend call carries: a key, the request id and the trace context."""
    caller = None
    if access.forward_caller_key:  # else the caller's key is not needed: skip the lookup
        caller = dict(context.invocation_metadata() or ()).get(AUTHORIZATION)
    metadata = access.call_metadata(caller if isinstance(caller, str) else None)
    metadata.append((REQUEST_ID_METADATA, request_id()))
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the gateway's span is current: backends join its trace
    metadata.extend(carrier.items())
    return metadata


async def relay_error(context: Context, error: grpc.aio.AioRpcError) -> None:
    """Ends the client's call with the backend's status, details and trailers."""
    trailing = tuple(
        (k, v) for k, v in (error.trailing_metadata() or ()) if k != REQUEST_ID_METADATA
    )
    await context.abort(error.code(), error.details() or "", trailing_metadata=trailing)


class ProxyHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Handles every proxied method by forwarding it."""

    def __init__(self, router: Router, idle_timeout_s: float) -> None:
        self._router = router
        self._idle_timeout_s = idle_timeout_s
        # One handler per method, made once: a call only looks its handler up.
        self._handlers = {path: self._handler(route) for path, route in routes().items()}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handlers.get(details.method)

    def _handler(self, route: Route) -> grpc.RpcMethodHandler:
        raw: dict[str, Any] = {"request_deserializer": None, "response_serializer": None}
        if route.request_streaming:
            return grpc.stream_stream_rpc_method_handler(self._streaming(route), **raw)
        if route.response_streaming:
            return grpc.unary_stream_rpc_method_handler(self._server_streaming(route), **raw)
        return grpc.unary_unary_rpc_method_handler(self._unary(route), **raw)

    def _unary(self, route: Route) -> Callable[[bytes, Context], Any]:
        async def forward(request: bytes, context: Context) -> bytes:
            model = route.model_of(request)
            await self._router.refreshed.wait()
            tried: set[str] = set()
            while True:
                replica = self._router.pick(route.service, model, tried)
                call = replica.callable("unary_unary", route.path)(
                    request,
                    timeout=context.time_remaining(),
                    metadata=outgoing_metadata(context, self._router.access),
                )
                try:
                    response: bytes = await call
                    return response
                except grpc.aio.AioRpcError as error:
                    if not _retryable(error, replica):
                        await relay_error(context, error)
                    tried.add(replica.address)

        return forward

    def _server_streaming(self, route: Route) -> Callable[[bytes, Context], AsyncIterator[bytes]]:
        async def forward(request: bytes, context: Context) -> AsyncIterator[bytes]:
            model = route.model_of(request)
            await self._router.refreshed.wait()
            tried: set[str] = set()
            while True:
                replica = self._router.pick(route.service, model, tried)
                call = replica.callable("unary_stream", route.path)(
                    request,
                    timeout=context.time_remaining(),
                    metadata=outgoing_metadata(context, self._router.access),
                )
                sent = False
                try:
                    async for response in call:
                        sent = True
                        yield response
                    return
                except grpc.aio.AioRpcError as error:
                    if sent or not _retryable(error, replica):
                        await relay_error(context, error)
                    tried.add(replica.address)
                finally:
                    call.cancel()  # no-op once finished; stops the backend if we were cancelled

        return forward

    async def _first_message(self, iterator: AsyncIterator[bytes]) -> bytes | None:
        # wait_for runs the read as its own task: an asyncio.timeout scope here would
        # keep a client's deadline from cancelling the backend call later (Python 3.11).
        try:
            return await asyncio.wait_for(anext(iterator, None), self._idle_timeout_s)
        except TimeoutError:
            raise IdleTimeout(
                f"no config message for {self._idle_timeout_s:g} s (limit "
                "stream_idle_timeout_s); send the config first, at once"
            ) from None

    def _streaming(self, route: Route) -> Callable[[Any, Context], AsyncIterator[bytes]]:
        async def forward(requests: Any, context: Context) -> AsyncIterator[bytes]:
            iterator = aiter(requests)
            first = await self._first_message(iterator)
            if first is None:
                raise InvalidArgument("config", "the stream ended before its config message")
            await self._router.refreshed.wait()
            replica = self._router.pick(route.service, route.model_of(first))
            call = replica.callable("stream_stream", route.path)(
                timeout=context.time_remaining(),
                metadata=outgoing_metadata(context, self._router.access),
            )
            pump = asyncio.create_task(_pump(first, iterator, call))
            try:
                async for response in call:
                    yield response
                await pump
            except grpc.aio.AioRpcError as error:
                _retryable(error, replica)  # marks a dead replica down for the next calls
                await relay_error(context, error)
            finally:
                pump.cancel()
                call.cancel()
                # The pump ends by itself once the call has; the backend's own status is
                # what the client gets, whatever the pump met on its way out.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump

        return forward


async def _pump(first: bytes, requests: AsyncIterator[bytes], call: Any) -> None:
    """Client → backend, one message at a time (each write waits for flow control),
    until the client half-closes or the backend ends the call (its status, which the
    reader relays, then stands: `write_request`)."""
    if not await write_request(call, first):
        return
    async for message in requests:
        if not await write_request(call, message, connected=True):
            return
    await close_requests(call)


def _retryable(error: grpc.aio.AioRpcError, replica: Replica) -> bool:
    if error.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    replica.mark_down(error.details() or "UNAVAILABLE")
    return True
