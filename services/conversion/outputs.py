"""Output audio of the conversion RPCs: the requested format, with the service's defaults."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Protocol

import numpy as np
import soxr

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.audio import (
    RAW_ENCODINGS,
    AudioSpec,
    Encoding,
    encode,
    output_rate_hz,
    resample,
)
from speechmesh.runtime.errors import InvalidArgument, LimitExceeded
from speechmesh.runtime.streams import check_stream_seconds, off_loop_if_large


def output_spec(fmt: audio_pb2.AudioFormat, field: str, *, streaming: bool) -> AudioSpec:
    """The validated output format; an unset encoding is WAV (whole audio) or PCM S16LE (streams).

    Streams take raw encodings only: their chunks must be playable one after another.
    """
    if fmt.encoding == audio_pb2.AUDIO_ENCODING_UNSPECIFIED:
        fmt = audio_pb2.AudioFormat(
            encoding=Encoding.PCM_S16LE if streaming else Encoding.WAV,
            sample_rate_hz=fmt.sample_rate_hz,
            channels=fmt.channels,
        )
    spec = AudioSpec.from_proto(fmt, field, for_output=True)
    if streaming and spec.encoding not in RAW_ENCODINGS:
        raise InvalidArgument(
            f"{field}.encoding",
            f"{spec.encoding.name} cannot be streamed out; use PCM_S16LE, PCM_F32LE or MULAW",
        )
    if spec.channels > 1:
        raise InvalidArgument(f"{field}.channels", "output audio is mono: set channels to 0 or 1")
    return spec


def encode_whole(
    samples: np.ndarray, rate: int, duration_s: float, spec: AudioSpec
) -> tuple[audio_pb2.Audio, int]:
    """Whole output audio in `spec`, exactly duration_s long at its rate, and its length."""
    out_rate = output_rate_hz(spec.sample_rate_hz or rate, spec)
    total = round(duration_s * out_rate)
    samples = resample(samples, rate, out_rate)
    samples = np.pad(samples[:total], (0, max(0, total - len(samples))))
    data = encode(samples, out_rate, AudioSpec(spec.encoding, out_rate, 1), "output_format")
    return audio_pb2.Audio(format=response_format(spec, out_rate), data=data), total


# Bytes per sample of the encodings whose size the length alone fixes.
_RAW_SAMPLE_BYTES = {
    Encoding.PCM_S16LE: 2,
    Encoding.PCM_F32LE: 4,
    Encoding.WAV: 2,
    Encoding.MULAW: 1,
}
# Room for the rest of the reply message (header, ids, format).
_REPLY_OVERHEAD_BYTES = 1024


def check_reply_fits(
    spec: AudioSpec, rate: int, duration_s: float, limit_bytes: int, streaming_rpc: str
) -> None:
    """RESOURCE_EXHAUSTED before any compute when the whole reply could not be sent: a
    raw reply's size follows from its length, so waiting for the model only to fail at
    send time ("larger than max") would waste the work."""
    per_sample = _RAW_SAMPLE_BYTES.get(spec.encoding)
    if per_sample is None:
        return
    out_rate = output_rate_hz(spec.sample_rate_hz or rate, spec)
    needed = round(duration_s * out_rate) * per_sample + _REPLY_OVERHEAD_BYTES
    if needed > limit_bytes:
        raise LimitExceeded(
            "max_message_bytes",
            limit_bytes,
            needed,
            "bytes",
            hint=f"stream the audio with {streaming_rpc}, or ask for a compressed "
            "output_format (FLAC, Ogg/Opus) or a lower sample rate",
        )


def response_format(spec: AudioSpec, rate: int) -> audio_pb2.AudioFormat:
    return audio_pb2.AudioFormat(encoding=int(spec.encoding), sample_rate_hz=rate, channels=1)


class StreamEncoder:
    """Model-rate samples → raw chunks at the output rate, with exact sample offsets."""

    def __init__(self, spec: AudioSpec, model_rate: int) -> None:
        self.spec = spec
        self.rate = spec.sample_rate_hz or model_rate
        self._model_rate = model_rate
        self._resampler = (
            soxr.ResampleStream(model_rate, self.rate, 1, dtype="float32", quality="HQ")
            if self.rate != model_rate
            else None
        )
        self.offset = 0

    def push(self, samples: np.ndarray, *, total: int | None = None) -> tuple[bytes, int, int]:
        """(bytes, first sample offset, sample count) for these model-rate samples.

        `total`, on the last push: the stream's whole length at the output rate, which
        the output is cut or padded to (resampling may round it by a sample).
        """
        last = total is not None
        if self._resampler is not None:
            samples = np.asarray(self._resampler.resample_chunk(samples, last=last), np.float32)
        if total is not None:
            wanted = max(0, total - self.offset)
            samples = np.pad(samples[:wanted], (0, max(0, wanted - len(samples))))
        first = self.offset
        self.offset += len(samples)
        spec = AudioSpec(self.spec.encoding, self.rate, 1)
        data = encode(samples.astype(np.float32), self.rate, spec) if len(samples) else b""
        return data, first, len(samples)


class AudioRun(Protocol):
    """An audio-in, audio-out stream runner (StreamingConvert, StreamingRestore)."""

    @property
    def samples_in(self) -> int: ...

    @property
    def input_rate_hz(self) -> int | None: ...

    async def feed(self, data: bytes) -> np.ndarray: ...

    async def finish(self) -> np.ndarray: ...


async def relay_audio(
    run: AudioRun,
    chunks: AsyncIterator[bytes],
    out: StreamEncoder,
    declared_rate_hz: int,
    max_stream_seconds: float,
) -> AsyncIterator[tuple[bytes, int, int]]:
    """Each input chunk through `run`, encoded as it is made: (data, first sample, sample
    count) per non-empty output chunk, under the stream budget. The output ends exactly
    as long as the input at the output's rate (`declared_rate_hz` stands in while the
    input's own rate is unknown)."""
    async for data in chunks:
        produced = await run.feed(data)
        check_stream_seconds(run.samples_in, run.input_rate_hz, max_stream_seconds)
        encoded, first, count = await off_loop_if_large(produced.nbytes, out.push, produced)
        if count:
            yield encoded, first, count
    in_rate = run.input_rate_hz or declared_rate_hz
    total = round(run.samples_in * out.rate / in_rate) if in_rate else 0
    tail = await run.finish()
    encoded, first, count = await off_loop_if_large(
        tail.nbytes, functools.partial(out.push, total=total), tail
    )
    if count:
        yield encoded, first, count
