"""The config-first convention of every streaming RPC, enforced in one place.

A stream's first message carries only its config (one case of the request's oneof);
every later message carries payload (any other case); the client half-closes to end.
Violations are INVALID_ARGUMENT naming where they happened; a client that sends
nothing for `idle_timeout_s` gets DEADLINE_EXCEEDED, so a forgotten stream never holds
a slot forever; a stream longer than `max_stream_seconds` is RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from speechmesh.runtime.errors import IdleTimeout, InvalidArgument, LimitExceeded

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
        raise IdleTimeout(
            f"no message for {idle_timeout_s:g} s (limit stream_idle_timeout_s); "
            "send audio at least that often or half-close the stream"
        ) from None


async def _payload(iterator: AsyncIterator[Any], idle_timeout_s: float) -> AsyncIterator[Any]:
    index = 0
    while (message := await next_message(iterator, idle_timeout_s)) is not None:
        index += 1
        kind = message.WhichOneof(ONEOF)
        if kind == CONFIG:
            raise InvalidArgument(
                f"requests[{index}]", "only the first message may carry the config"
            )
        if kind is None:
            raise InvalidArgument(f"requests[{index}]", "the message carries nothing")
        yield message
