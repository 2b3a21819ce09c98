"""Values that flow between orchestrator steps: audio pieces, and topics that fan out.

Each step output is a topic. Every consumer of it (a step input, a graph output)
subscribes before the run starts and reads the items in order through its own queue.
A streamed consumer's queue is bounded: when it is full the producer waits, so a slow
reader (in the end, the client) holds the whole run back instead of letting memory
grow; waiting producers stop reading their own backend streams, and gRPC flow control
carries the pause on to the services. A consumer that needs a whole value (an
embedding, a reference clip) reads an unbounded queue: it holds everything anyway.
Nothing is kept once every consumer has taken it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime import audio
from speechmesh.runtime.errors import InvalidArgument

F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE
CHUNK_S = 0.2  # audio handed to a streaming step per message
ITEMS_IN_FLIGHT = 4  # items a streamed consumer may have waiting before the producer waits


@dataclass(frozen=True)
class AudioPiece:
    samples: np.ndarray  # float32 mono
    rate: int


class Reader:
    """One consumer's queue of a topic: bounded (None: unbounded), read in order once."""

    def __init__(self, kind: int, bound: int | None) -> None:
        self.kind = kind
        self.bound = bound
        self._items: deque[Any] = deque()
        self._closed = False
        self._abandoned = False
        self._changed = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._items)

    async def _put(self, item: Any) -> None:
        async with self._changed:
            await self._changed.wait_for(self._has_room)
            if not self._abandoned:
                self._items.append(item)
                self._changed.notify_all()

    def _has_room(self) -> bool:
        return self._abandoned or self.bound is None or len(self._items) < self.bound

    async def _close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def abandon(self) -> None:
        """The consumer is done (it finished or failed): drop what waits, never block again."""
        async with self._changed:
            self._abandoned = True
            self._items.clear()
            self._changed.notify_all()

    async def read(self) -> AsyncIterator[Any]:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._items) or self._closed)
                if not self._items:
                    return
                item = self._items.popleft()
                self._changed.notify_all()  # room for a waiting producer
            yield item

    async def whole(self) -> list[Any]:
        return [item async for item in self.read()]


class Topic:
    """A step output (or graph input): each item goes to every subscribed reader."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.readers: list[Reader] = []

    def subscribe(self, bounded: bool) -> Reader:
        reader = Reader(self.kind, ITEMS_IN_FLIGHT if bounded else None)
        self.readers.append(reader)
        return reader

    async def put(self, item: Any) -> None:
        """Waits while any bounded reader is full; an output nobody reads keeps nothing."""
        for reader in self.readers:
            await reader._put(item)

    async def close(self) -> None:
        for reader in self.readers:
            await reader._close()


def audio_from_value(value: audio_pb2.Audio, field: str) -> AudioPiece:
    spec = audio.AudioSpec.from_proto(value.format, f"{field}.format")
    decoded = audio.decode(value.data, spec, f"{field}.data")
    return AudioPiece(decoded.samples.astype(np.float32), decoded.sample_rate_hz)


def f32_audio(piece: AudioPiece) -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=piece.rate, channels=1),
        data=piece.samples.astype("<f4").tobytes(),
    )


async def audio_chunks(source: Reader) -> AsyncIterator[AudioPiece]:
    """The source's audio re-cut into CHUNK_S pieces, as it arrives."""
    async for piece in source.read():
        step = max(1, int(piece.rate * CHUNK_S))
        for start in range(0, len(piece.samples), step):
            yield AudioPiece(piece.samples[start : start + step], piece.rate)


def joined(pieces: list[AudioPiece], field: str) -> AudioPiece:
    if not pieces:
        raise InvalidArgument(field, "the audio is empty")
    rate = pieces[0].rate
    return AudioPiece(np.concatenate([p.samples for p in pieces]), rate)
