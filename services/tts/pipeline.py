"""Runs a synthesis's pieces through the model in order, computing ahead of the sender.

A producer task takes items (text pieces, and markers such as a bidi flush) from an
async iterator, sends each piece through the model's batcher and queues the result;
the caller takes results in order. While the caller encodes and sends one piece, the
model is already working on the next: the queue holds at most LOOKAHEAD results, so
a slow reader holds back synthesis instead of piling up audio. When the caller stops
(the client cancelled, or an error), the producer is cancelled at once: a piece still
queued in the batcher is dropped there, and nothing further is synthesized.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

from speechmesh.runtime.pool import HostedModel
from speechmesh.runtime.text import Piece
from speechmesh.services.tts.engine import SynthesisJob

LOOKAHEAD = 1


class _End:
    pass


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


async def in_order(
    model: HostedModel, settings: Any, items: AsyncIterable[Any]
) -> AsyncIterator[tuple[Any, Any]]:
    """(item, audio) for each item in order; audio is None for anything but a Piece."""
    queue: asyncio.Queue[tuple[Any, Any] | _End | _Failed] = asyncio.Queue(maxsize=LOOKAHEAD)

    async def produce() -> None:
        try:
            async for item in items:
                audio = None
                if isinstance(item, Piece):
                    audio = await model.run(SynthesisJob(item.text, settings))
                await queue.put((item, audio))
            await queue.put(_End())
        except Exception as error:  # the caller raises it, in order
            await queue.put(_Failed(error))

    producer = asyncio.get_running_loop().create_task(produce())
    try:
        while True:
            entry = await queue.get()
            if isinstance(entry, _End):
                return
            if isinstance(entry, _Failed):
                raise entry.error
            yield entry
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


async def each(items: Iterable[Any]) -> AsyncIterator[Any]:
    """A plain sequence as an async iterator."""
    for item in items:
        yield item
