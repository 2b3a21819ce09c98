"""Cross-cutting call handling in one place: request id, tracing, metrics, auth, drain,
stream limits, the audio budget (admission.py), and the mapping of domain errors to
gRPC statuses.

One server interceptor wraps every handler (unary or streaming, either side) in the
same async context manager, so each concern is written once for all four call kinds.
Health and reflection are exempt: probes must work without keys and while draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status
from opentelemetry import context as otel_context
from opentelemetry import trace

from speechmesh.runtime import admission
from speechmesh.runtime.auth import ApiKeyVerifier
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.errors import (
    InvalidArgument,
    LimitExceeded,
    SpeechmeshError,
    Unavailable,
    to_rpc_status,
)
from speechmesh.runtime.requests import REQUEST_ID_METADATA, bind_request_id, request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.telemetry import ACTIVE_STREAMS, LATENCY, REQUESTS, extract_context, tracer

log = logging.getLogger(__name__)
EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
Around = Callable[[Context], AbstractAsyncContextManager[None]]


class DrainState:
    """Counts calls in flight and refuses new ones once the server drains."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        if self.draining:
            raise Unavailable("server is draining before shutdown; retry on another replica")
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """True when every call finished within `timeout_s`."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class CallGuard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The mesh's one server interceptor."""

    def __init__(
        self,
        limits: LimitsConfig,
        drain: DrainState,
        verifier: ApiKeyVerifier | None,
        stream_held_s: float | None = None,
    ) -> None:
        """`stream_held_s`: what a request stream counts against the audio budget
        (None: limits.stream_held_audio_seconds; 0 where streams hold no audio, as
        in the gateway's byte proxy)."""
        self._limits = limits
        self._drain = drain
        self._verifier = verifier
        self._streams = 0
        self.budget = admission.AudioBudget(limits.max_held_audio_seconds)
        self._stream_held_s = (
            limits.stream_held_audio_seconds if stream_held_s is None else stream_held_s
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(EXEMPT_PREFIXES):
            return handler
        metadata = {k: v for k, v in details.invocation_metadata or () if isinstance(v, str)}
        streaming = bool(handler.request_streaming or handler.response_streaming)
        held_s = self._stream_held_s if handler.request_streaming else 0.0

        def around(context: Context) -> AbstractAsyncContextManager[None]:
            return self._around(method, metadata, streaming, held_s, context)

        return _wrap(handler, around, self._check_reply)

    def _check_reply(self, reply: Any) -> None:
        """RESOURCE_EXHAUSTED naming the limit for a reply too large to send; grpc itself
        would fail the call with a bare "Sent message larger than max"."""
        limit = self._limits.max_message_bytes
        # The gateway's byte proxy replies with serialized messages.
        size = len(reply) if isinstance(reply, bytes) else reply.ByteSize()
        if size > limit:
            raise LimitExceeded(
                "max_message_bytes",
                limit,
                size,
                "bytes",
                hint="ask for the streaming RPC, a compressed output_format (FLAC, Ogg/Opus) "
                "or a lower sample rate",
            )

    @asynccontextmanager
    async def _around(
        self,
        method: str,
        metadata: dict[str, str],
        streaming: bool,
        held_s: float,
        context: Context,
    ) -> AsyncIterator[None]:
        bind_request_id(metadata.get(REQUEST_ID_METADATA))
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        counted_stream = entered = False
        span = tracer.start_span(
            method, context=extract_context(metadata), kind=trace.SpanKind.SERVER
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        with contextlib.ExitStack() as finish:
            finish.callback(span.end)
            try:
                if self._verifier is not None:
                    self._verifier.verify(metadata.get("authorization"))
                self._drain.enter()
                entered = True
                if streaming:
                    self._admit_stream()
                    counted_stream = True
                    ACTIVE_STREAMS.labels(method).inc()
                finish.enter_context(admission.holding(self.budget, held_s))
                yield
                context.set_trailing_metadata(((REQUEST_ID_METADATA, request_id()),))
            except SpeechmeshError as error:
                code = error.code
                await _abort(context, error)
            except DecodeError as error:
                # A message that does not parse (e.g. a string field holding invalid
                # UTF-8, which protobuf forbids) is the client's error, not ours.
                code = grpc.StatusCode.INVALID_ARGUMENT
                await _abort(context, _unparsable(error))
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in %s (request %s)", method, request_id())
                await context.abort(
                    grpc.StatusCode.INTERNAL,
                    f"internal error; request id {request_id()}",
                    trailing_metadata=((REQUEST_ID_METADATA, request_id()),),
                )
            finally:
                if counted_stream:
                    self._streams -= 1
                    ACTIVE_STREAMS.labels(method).dec()
                if entered:
                    self._drain.leave()
                elapsed = time.perf_counter() - started
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                span.set_attribute("speechmesh.request_id", request_id())
                if code != grpc.StatusCode.OK:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
                _requests(method, code.name).inc()
                _latency(method).observe(elapsed)
                log.log(
                    logging.DEBUG if code == grpc.StatusCode.OK else logging.INFO,
                    "%s %s %.1f ms request=%s",
                    method,
                    code.name,
                    elapsed * 1000,
                    request_id(),
                )
                # A cancelled stream's generator is closed from another context, where
                # detaching fails (and OpenTelemetry logs it at ERROR); that context
                # dies with the call, so there is nothing to restore.
                if code != grpc.StatusCode.CANCELLED:
                    otel_context.detach(token)

    def _admit_stream(self) -> None:
        limit = self._limits.max_concurrent_streams
        if self._streams >= limit:
            raise LimitExceeded("max_concurrent_streams", limit, self._streams + 1, "streams")
        self._streams += 1


# Labelled metric children, looked up once per method (and code): `labels()` validates
# and locks on every call. Methods are the server's own, so the caches stay small.
@functools.cache
def _requests(method: str, code: str) -> Any:
    return REQUESTS.labels(method, code)


@functools.cache
def _latency(method: str) -> Any:
    return LATENCY.labels(method)


async def _abort(context: Context, error: SpeechmeshError) -> None:
    status = rpc_status.to_status(to_rpc_status(error))
    await context.abort(
        status.code,
        status.details,
        trailing_metadata=(*status.trailing_metadata, (REQUEST_ID_METADATA, request_id())),
    )


def _unparsable(error: DecodeError) -> InvalidArgument:
    return InvalidArgument("", f"the request is not a valid message: {error}")


class _Unparsable:
    """A unary request that failed to parse, carried into the call so that the error
    maps to INVALID_ARGUMENT there (gRPC would answer UNKNOWN before the call)."""

    def __init__(self, error: DecodeError) -> None:
        self.error = error


def _deferring(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return _Unparsable(error)

    return parse


def _parsed(request: Any) -> Any:
    if isinstance(request, _Unparsable):
        raise request.error
    return request


def _wrap(
    handler: grpc.RpcMethodHandler, around: Around, check_reply: Callable[[Any], None]
) -> grpc.RpcMethodHandler:
    """The same handler with its behaviour run inside `around`, each reply checked."""
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    unary_codec = {**codec, "request_deserializer": _deferring(handler.request_deserializer)}
    if handler.unary_unary:
        unary_unary = handler.unary_unary

        async def _unary_unary(request: Any, context: Context) -> Any:
            async with around(context):
                reply = await unary_unary(_parsed(request), context)
                check_reply(reply)
                return reply

        return grpc.unary_unary_rpc_method_handler(_unary_unary, **unary_codec)
    if handler.unary_stream:
        unary_stream = handler.unary_stream

        async def _unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            async with around(context):
                async for response in unary_stream(_parsed(request), context):
                    check_reply(response)
                    yield response

        return grpc.unary_stream_rpc_method_handler(_unary_stream, **unary_codec)
    if handler.stream_unary:
        stream_unary = handler.stream_unary

        async def _stream_unary(requests: Any, context: Context) -> Any:
            async with around(context):
                reply = await stream_unary(requests, context)
                check_reply(reply)
                return reply

        return grpc.stream_unary_rpc_method_handler(_stream_unary, **codec)
    stream_stream = handler.stream_stream

    async def _stream_stream(requests: Any, context: Context) -> AsyncIterator[Any]:
        async with around(context):
            async for response in stream_stream(requests, context):
                check_reply(response)
                yield response

    return grpc.stream_stream_rpc_method_handler(_stream_stream, **codec)
