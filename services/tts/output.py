"""Synthesized audio on its way out: resampled piece by piece, then encoded.

Each piece (sentence) is resampled on its own, from the model's rate to the requested
one, so a stream and a whole response carry the very same samples. A whole response
encodes them in one go; a stream encodes them as they come (runtime.audio's
StreamEncoder) in chunks of at most CHUNK_SECONDS, counting samples for the offsets. A
piece that comes in parts (a stream within a sentence) goes through one streaming
resampler, so its parts join as one piece's samples would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.audio import (
    AudioSpec,
    Encoding,
    Samples,
    StreamEncoder,
    encode,
    output_rate_hz,
    resample,
    resample_stream,
)
from speechmesh.runtime.errors import InvalidArgument

# Keeps each response well under gRPC's default 4 MB receive limit of clients, at any
# rate and encoding.
CHUNK_SECONDS = 1.0


def output_spec(fmt: audio_pb2.AudioFormat, default: Encoding, field: str) -> AudioSpec:
    """The requested output format; an unset encoding means `default`."""
    if fmt.channels > 1:
        raise InvalidArgument(f"{field}.channels", "synthesized audio is mono: set 0 or 1")
    if fmt.encoding == audio_pb2.AUDIO_ENCODING_UNSPECIFIED:
        fmt = audio_pb2.AudioFormat(
            encoding=default.value, sample_rate_hz=fmt.sample_rate_hz, channels=fmt.channels
        )
    return AudioSpec.from_proto(fmt, field, for_output=True)


@dataclass(frozen=True)
class EncodedChunk:
    data: bytes
    sample_offset: int
    num_samples: int


class AudioOut:
    """The output side of one synthesis: rate, format and the samples so far."""

    def __init__(self, spec: AudioSpec, native_rate_hz: int) -> None:
        self.spec = spec
        self.native_rate_hz = native_rate_hz
        self.rate_hz = output_rate_hz(native_rate_hz, spec)
        self.samples = 0
        self._parts: list[Samples] = []
        self._encoder: StreamEncoder | None = None
        self._resampler: Any = None  # the piece in parts being resampled, if any

    @property
    def format(self) -> audio_pb2.AudioFormat:
        return audio_pb2.AudioFormat(
            encoding=self.spec.encoding.value, sample_rate_hz=self.rate_hz, channels=1
        )

    def _resampled(self, samples: Samples) -> Samples:
        return resample(samples, self.native_rate_hz, self.rate_hz)

    def add(self, samples: Samples) -> None:
        """Keeps a piece for `whole()`."""
        piece = self._resampled(samples)
        self._parts.append(piece)
        self.samples += len(piece)

    def whole(self) -> bytes:
        """Everything added, as one file or raw buffer."""
        samples = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        return encode(samples, self.rate_hz, AudioSpec(self.spec.encoding, self.rate_hz))

    def _part_resampled(self, samples: Samples, more: bool) -> Samples:
        if self.rate_hz == self.native_rate_hz:
            return samples
        if not more and self._resampler is None:
            return self._resampled(samples)
        if self._resampler is None:
            self._resampler = resample_stream(self.native_rate_hz, self.rate_hz)
        out = np.asarray(
            self._resampler.resample_chunk(np.ascontiguousarray(samples), last=not more),
            np.float32,
        )
        if not more:
            self._resampler = None
        return out

    def stream(self, samples: Samples, more: bool = False) -> list[EncodedChunk]:
        """A piece's chunks for a stream, in order (one, empty, for a silent piece);
        `more`: a part of a piece, whose rest follows."""
        if self._encoder is None:
            self._encoder = StreamEncoder(self.spec.encoding, self.rate_hz)
        piece = self._part_resampled(samples, more)
        if more and not len(piece):
            return []  # the resampler holds a short part back: nothing to send yet
        step = max(1, int(CHUNK_SECONDS * self.rate_hz))
        chunks = []
        for start in range(0, max(len(piece), 1), step):
            part = piece[start : start + step]
            chunks.append(EncodedChunk(self._encoder.encode(part), self.samples, len(part)))
            self.samples += len(part)
        return chunks

    def finish(self) -> bytes:
        """The stream encoder's last bytes (FLAC and Opus hold some back)."""
        if self._encoder is None:
            self._encoder = StreamEncoder(self.spec.encoding, self.rate_hz)
        return self._encoder.finish()
