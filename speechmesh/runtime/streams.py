"""The config-first convention of every streaming RPC, enforced in one place.

A stream's first message carries only its config (one case of the request's oneof);
every later message carries payload (any other case); the client half-closes to end.
Violations are INVALID_ARGUMENT naming where they happened; a client that sends
nothing for `idle_timeout_s` gets DEADLINE_EXCEEDED, so a forgotten stream never holds
a slot forever; a stream longer than `max_stream_seconds` is RESOURCE_EXHAUSTED.

The runners of audio-in streams share their input side: `StreamInput` decodes the
incoming bytes (big chunks off the event loop) and counts what arrived.

The client side of a request stream (the gateway's pump, the drills): `write_request`
and `close_requests` keep the server's status when it ends the call mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
import numpy as np
from grpc._cython import cygrpc

from speechmesh.runtime.audio import AudioSpec, StreamDecoder
from speechmesh.runtime.errors import IdleTimeout, InvalidArgument, LimitExceeded

T = TypeVar("T")

# Chunks of at least this many bytes are decoded on a worker thread: a live stream's
# small chunk costs less to decode than the thread hop, while a whole file fed at once
# (Detect, Restore) would hold the event loop for as long as its resampling takes.
OFFLOAD_BYTES = 32 * 1024

ONEOF = "request"
CONFIG = "config"


async def config_first(
    requests: AsyncIterable[Any], idle_timeout_s: float
) -> tuple[Any, AsyncIterator[Any]]:
    """The stream's config message, and an iterator over the payload messages after it."""
    iterator = aiter(requests)
    first = await next_message(iterator, idle_timeout_s)
    if first is None:
        raise InvalidArgument(CONFIG, "the stream ended before its config message")
    kind = first.WhichOneof(ONEOF)
    if kind != CONFIG:
        raise InvalidArgument(
            CONFIG, f"the first message must carry the config, not {kind or 'nothing'}"
        )
    return getattr(first, CONFIG), _payload(iterator, idle_timeout_s)


def check_stream_seconds(samples: int, rate_hz: int | None, max_stream_seconds: float) -> None:
    """RESOURCE_EXHAUSTED once a stream has carried more than max_stream_seconds of audio
    (`samples` at `rate_hz`; nothing is known before the rate is)."""
    if not rate_hz:
        return
    seconds = samples / rate_hz
    if seconds > max_stream_seconds:
        raise LimitExceeded("max_stream_seconds", max_stream_seconds, round(seconds, 1), "s")


async def next_message(iterator: AsyncIterator[Any], idle_timeout_s: float) -> Any:
    """The stream's next message (None at its end); DEADLINE_EXCEEDED when the client
    sends nothing for idle_timeout_s."""
    try:
        async with asyncio.timeout(idle_timeout_s):
            return await anext(iterator, None)
    except TimeoutError:
        raise _idle(idle_timeout_s) from None


def _idle(idle_timeout_s: float) -> IdleTimeout:
    return IdleTimeout(
        f"no message for {idle_timeout_s:g} s (limit stream_idle_timeout_s); "
        "send audio at least that often or half-close the stream"
    )


async def _payload(iterator: AsyncIterator[Any], idle_timeout_s: float) -> AsyncIterator[Any]:
    index = 0
    idle = _IdleWatch(idle_timeout_s)
    try:
        while (message := await idle.read(iterator)) is not None:
            index += 1
            kind = message.WhichOneof(ONEOF)
            if kind == CONFIG:
                raise InvalidArgument(
                    f"requests[{index}]", "only the first message may carry the config"
                )
            if kind is None:
                raise InvalidArgument(f"requests[{index}]", "the message carries nothing")
            yield message
    finally:
        idle.close()


class _IdleWatch:
    """`next_message`'s limit for the messages of one stream, with one timer for all of
    them: a timeout scope per read adds and cancels a timer per message, and with
    hundreds of streams the churn of the loop's timer heap cost about 20 µs of the event
    loop per message (VAD, 200 streams). The timer re-arms itself only when it fires,
    for when the read in progress (if any) will have waited idle_timeout_s."""

    def __init__(self, idle_timeout_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle_timeout_s = idle_timeout_s
        self._since: float | None = None  # when the read in progress began
        self._reader: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._expired = False
        self._timer: asyncio.TimerHandle | None = None

    async def read(self, iterator: AsyncIterator[Any]) -> Any:
        """The next message (None at the end); DEADLINE_EXCEEDED after idle_timeout_s."""
        self._since = self._loop.time()
        self._reader = asyncio.current_task()
        self._cancelling = self._reader.cancelling() if self._reader is not None else 0
        if self._timer is None:
            self._timer = self._loop.call_at(self._since + self._idle_timeout_s, self._check)
        try:
            return await anext(iterator, None)
        except asyncio.CancelledError:
            # Ours (not the caller's cancellation) when we cancelled and no one else did,
            # as asyncio.timeout tells them apart.
            reader = self._reader
            if self._expired and reader is not None and reader.uncancel() <= self._cancelling:
                raise _idle(self._idle_timeout_s) from None
            raise
        finally:
            self._since = None
            self._expired = False

    def _check(self) -> None:
        self._timer = None
        if self._since is None or self._reader is None:
            return  # between reads: the next read arms the timer again
        due = self._since + self._idle_timeout_s
        if self._loop.time() >= due:
            self._expired = True
            self._reader.cancel()
        else:
            self._timer = self._loop.call_at(due, self._check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def off_loop_if_large(size_bytes: int, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)`, on a worker thread when it handles OFFLOAD_BYTES or more."""
    if size_bytes >= OFFLOAD_BYTES:
        return await asyncio.to_thread(work, *args)
    return work(*args)


class StreamInput:
    """The input side of a stream's runner: bytes in any streamable encoding become
    samples at the model's rate, and the samples that arrived are counted at the
    input's own rate (for the budget and for `processed_samples`)."""

    def __init__(self, spec: AudioSpec, model_rate_hz: int) -> None:
        self._decoder = StreamDecoder(spec, target_rate_hz=model_rate_hz)

    @property
    def samples_in(self) -> int:
        """Samples per channel received, at the input's rate."""
        return self._decoder.samples_in

    @property
    def input_rate_hz(self) -> int | None:
        """The input's rate; None for WAV until its header has arrived."""
        return self._decoder.input_rate_hz

    async def _decoded(self, data: bytes) -> np.ndarray:
        """The model-rate samples these bytes completed; possibly none."""
        return await off_loop_if_large(len(data), self._decoder.feed, data)

    def _decoded_tail(self) -> np.ndarray:
        """What the decoder still holds (the resampler's tail) at the end of input."""
        return self._decoder.flush()


# --- The client side of a request stream -----------------------------------------------


async def write_request(
    call: grpc.aio.StreamStreamCall, message: Any, *, connected: bool = False
) -> bool:
    """Sends one request (a message, or its bytes on a channel without serializers) on a
    stream opened without a request iterator; False once the server has ended the call,
    whose own status then stands.

    A server that refuses a stream (a bad config, a limit) ends it while the client may
    still be sending. grpc.aio's `write` replaces the status already received with
    INTERNAL "Internal error from Core" when a write was in flight as it came
    (grpc/grpc#36066), so a client would see INTERNAL instead of the INVALID_ARGUMENT or
    RESOURCE_EXHAUSTED it was sent. This writes through the call's core object, whose
    failure leaves the status alone; `wait_for_connection` is the public part of the
    wait that `write` does before the first message. `connected`: an earlier write
    went through, so that wait is over (a stream's later messages skip it).
    """
    if not connected:
        with contextlib.suppress(grpc.aio.AioRpcError):  # ended before it started
            await call.wait_for_connection()
    if call.done():
        return False
    data = message if isinstance(message, bytes) else message.SerializeToString()
    try:
        await call._cython_call.send_serialized_message(data)  # type: ignore[attr-defined]
    except cygrpc.InternalError:
        return False
    return True


async def close_requests(call: grpc.aio.StreamStreamCall) -> None:
    """Half-closes the request side, unless the server has already ended the call."""
    with contextlib.suppress(cygrpc.InternalError):
        await call.done_writing()
