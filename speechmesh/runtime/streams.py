"""The config-first convention of every streaming RPC, enforced in one place.

A stream's first message carries only its config (one case of the request's oneof);
every later message carries payload (any other case); the client half-closes to end.
Violations are INVALID_ARGUMENT naming where they happened.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from speechmesh.runtime.errors import InvalidArgument

ONEOF = "request"
CONFIG = "config"


async def config_first(requests: AsyncIterable[Any]) -> tuple[Any, AsyncIterator[Any]]:
    """The stream's config message, and an iterator over the payload messages after it."""
    iterator = aiter(requests)
    first = await anext(iterator, None)
    if first is None:
        raise InvalidArgument(CONFIG, "the stream ended before its config message")
    kind = first.WhichOneof(ONEOF)
    if kind != CONFIG:
        raise InvalidArgument(
            CONFIG, f"the first message must carry the config, not {kind or 'nothing'}"
        )
    return getattr(first, CONFIG), _payload(iterator)


async def _payload(iterator: AsyncIterator[Any]) -> AsyncIterator[Any]:
    index = 0
    async for message in iterator:
        index += 1
        kind = message.WhichOneof(ONEOF)
        if kind == CONFIG:
            raise InvalidArgument(
                f"requests[{index}]", "only the first message may carry the config"
            )
        if kind is None:
            raise InvalidArgument(f"requests[{index}]", "the message carries nothing")
        yield message
