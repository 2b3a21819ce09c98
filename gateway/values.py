"""Values that flow between orchestrator steps: audio pieces, and topics that grow.

Each step output is a topic: an append-only sequence of items that any number of
consumers read in order while it grows, however late they join. That one mechanism
gives streaming between steps (a consumer sees each item as it is put), fan-out (two
steps read the same output) and buffering (a step that needs a whole value reads to
the end).
"""

from __future__ import annotations

import asyncio
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


@dataclass(frozen=True)
class AudioPiece:
    samples: np.ndarray  # float32 mono
    rate: int


class Topic:
    """An output that grows; readers see every item in order, however late they join."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.items: list[Any] = []
        self.closed = False
        self._changed = asyncio.Condition()

    async def put(self, item: Any) -> None:
        async with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    async def read(self) -> AsyncIterator[Any]:
        index = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(
                    lambda seen=index: seen < len(self.items) or self.closed
                )
                batch, done = self.items[index:], self.closed
            index += len(batch)
            for item in batch:
                yield item
            if done and index >= len(self.items):
                return

    async def whole(self) -> list[Any]:
        return [item async for item in self.read()]


def audio_from_value(value: audio_pb2.Audio, field: str) -> AudioPiece:
    spec = audio.AudioSpec.from_proto(value.format, f"{field}.format")
    decoded = audio.decode(value.data, spec, f"{field}.data")
    return AudioPiece(decoded.samples.astype(np.float32), decoded.sample_rate_hz)


def f32_audio(piece: AudioPiece) -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=piece.rate, channels=1),
        data=piece.samples.astype("<f4").tobytes(),
    )


async def audio_chunks(topic: Topic) -> AsyncIterator[AudioPiece]:
    """The topic's audio re-cut into CHUNK_S pieces, as it arrives."""
    async for piece in topic.read():
        step = max(1, int(piece.rate * CHUNK_S))
        for start in range(0, len(piece.samples), step):
            yield AudioPiece(piece.samples[start : start + step], piece.rate)


def joined(pieces: list[AudioPiece], field: str) -> AudioPiece:
    if not pieces:
        raise InvalidArgument(field, "the audio is empty")
    rate = pieces[0].rate
    return AudioPiece(np.concatenate([p.samples for p in pieces]), rate)
