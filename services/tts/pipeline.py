"""Runs a synthesis's pieces through the model in order, computing ahead of the sender.

A producer task takes items (text pieces, and markers such as a bidi flush) from an
async iterator, sends each piece through the model's batcher and queues the result;
the caller takes results in order. While the caller encodes and sends one piece, the
model is already working on the next: the queue holds at most LOOKAHEAD results, so
a slow reader holds back synthesis instead of piling up audio. When the caller stops
(the client cancelled, or an error), the producer is cancelled at once: a piece still
queued in the batcher is dropped there, a piece being synthesized is told so (its
job's `cancelled`), and nothing further is synthesized.

For a stream (`parts=True`) each piece's job has a sink: an engine that makes audio
within a piece (Chatterbox with stream_chunk_tokens) hands its parts over from the
model's thread, and they are queued as they come, before the piece's rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
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
    model: HostedModel, settings: Any, items: AsyncIterable[Any], parts: bool = False
) -> AsyncIterator[tuple[Any, Any, bool]]:
    """(item, audio, last) in order: audio is None for anything but a Piece; a piece
    comes once (last True), or, with `parts`, also as the parts its engine hands over
    before the rest (last False)."""
    queue: asyncio.Queue[tuple[Any, Any, bool] | _End | _Failed] = asyncio.Queue(maxsize=LOOKAHEAD)
    loop = asyncio.get_running_loop()

    async def piece(item: Piece) -> None:
        cancelled = threading.Event()
        if not parts:
            job = SynthesisJob(item.text, settings, cancelled=cancelled)
            try:
                await queue.put((item, await model.run(job), True))
            finally:
                cancelled.set()
            return
        made: asyncio.Queue[Any] = asyncio.Queue()
        done = object()
        job = SynthesisJob(
            item.text,
            settings,
            sink=lambda part: loop.call_soon_threadsafe(made.put_nowait, part),
            cancelled=cancelled,
        )
        running = asyncio.ensure_future(model.run(job))
        # Scheduled after every part the model's thread handed over before it finished.
        running.add_done_callback(lambda _: made.put_nowait(done))
        try:
            while (part := await made.get()) is not done:
                await queue.put((item, part, False))
            await queue.put((item, await running, True))
        finally:
            cancelled.set()
            if not running.done():
                running.cancel()

    async def produce() -> None:
        try:
            async for item in items:
                if isinstance(item, Piece):
                    await piece(item)
                else:
                    await queue.put((item, None, True))
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
