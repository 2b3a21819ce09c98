"""The bad-input matrix's shared parts: calling any public RPC by its path, the bad
audio every audio field is tried with, and the check each case makes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.gateway.proxy import routes
from speechmesh.runtime import audio as audio_io

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
E = audio_pb2
S16 = E.AudioFormat(encoding=E.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
F32 = E.AudioFormat(encoding=E.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=16000)
SECOND = b"\0\0" * 16000  # one second of 16 kHz silence
# Paths of every RPC a client reaches through the gateway, with their streaming shape.
STREAMING = {path: (r.request_streaming, r.response_streaming) for path, r in routes().items()}
STREAMING["/speechmesh.orchestrator.v1.Orchestrator/RunGraph"] = (False, True)
STREAMING["/speechmesh.orchestrator.v1.Orchestrator/ListGraphs"] = (False, False)
STREAMING["/speechmesh.models.v1.Models/ListModels"] = (False, False)


@dataclass
class Case:
    """One bad call: the RPC, what is sent (a message, raw bytes, or a stream's
    messages), the status it must get and the words its message must hold."""

    method: str
    request: Any
    code: grpc.StatusCode
    reason: str
    timeout: float = 60.0
    cancel_after: int | None = None
    """Streams: cancel the call once this many messages were sent."""
    extra: dict[str, Any] = field(default_factory=dict)


def _serialize(message: Any) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


def invoke(channel: grpc.Channel, case: Case, metadata: list[tuple[str, str]] = ()) -> list:
    """Calls the case's RPC; the (raw) responses. Raises the call's RpcError."""
    request_streaming, response_streaming = STREAMING[case.method]
    kwargs = {"timeout": case.timeout, "metadata": list(metadata)}
    if request_streaming:
        call = channel.stream_stream(case.method, _serialize, None)
        messages = list(case.request)
        if case.cancel_after is not None:
            return _cancelled(call, messages, case, kwargs)
        return list(call(iter(messages), **kwargs))
    if response_streaming:
        return list(channel.unary_stream(case.method, _serialize, None)(case.request, **kwargs))
    return [channel.unary_unary(case.method, _serialize, None)(case.request, **kwargs)]


def _cancelled(call: Callable, messages: list, case: Case, kwargs: dict) -> list:
    import threading

    sent, cancelled = threading.Event(), threading.Event()

    def requests():
        for index, message in enumerate(messages):
            if index == case.cancel_after:
                sent.set()
                cancelled.wait(30)  # the stream stays open until the client cancels it
            yield message

    responses = call(requests(), **kwargs)

    def cancel() -> None:
        sent.wait(10)
        threading.Event().wait(0.2)  # the messages sent reach the backend first
        responses.cancel()
        cancelled.set()

    threading.Thread(target=cancel, daemon=True).start()
    return list(responses)


def encoded(encoding: int, seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A real file of a tone in `encoding`, for cutting short."""
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    spec = audio_io.AudioSpec(audio_io.Encoding(encoding), rate, 1)
    return audio_io.encode(tone, rate, spec)


CONTAINERS = {
    "WAV": E.AUDIO_ENCODING_WAV,
    "FLAC": E.AUDIO_ENCODING_FLAC,
    "Ogg/Opus": E.AUDIO_ENCODING_OGG_OPUS,
    "MP3": E.AUDIO_ENCODING_MP3,
    "AAC": E.AUDIO_ENCODING_AAC,
    "Ogg/Vorbis": E.AUDIO_ENCODING_OGG_VORBIS,
    "WebM/Opus": E.AUDIO_ENCODING_WEBM_OPUS,
}
# Text with no byte a codec could take for a frame sync (0xFF).
GARBAGE = b"this is not audio, only words " * 60


def bad_audio() -> dict[str, tuple[audio_pb2.Audio, grpc.StatusCode, str]]:
    """Bad Audio values: name -> (audio, status, what the message names, relative to
    the field: "data", "format.encoding", ...)."""
    cases: dict[str, tuple[audio_pb2.Audio, grpc.StatusCode, str]] = {}
    for name, encoding in CONTAINERS.items():
        fmt = E.AudioFormat(encoding=encoding)
        cases[f"garbage {name}"] = (E.Audio(format=fmt, data=GARBAGE), INVALID, "data")
    for name, (encoding, keep) in {
        "WAV": (E.AUDIO_ENCODING_WAV, 30),
        "FLAC": (E.AUDIO_ENCODING_FLAC, 40),
        "Ogg/Opus": (E.AUDIO_ENCODING_OGG_OPUS, 60),
        "MP3": (E.AUDIO_ENCODING_MP3, 60),
        "AAC": (E.AUDIO_ENCODING_AAC, 40),
        "Ogg/Vorbis": (E.AUDIO_ENCODING_OGG_VORBIS, 60),
        "WebM/Opus": (E.AUDIO_ENCODING_WEBM_OPUS, 60),
    }.items():
        data = encoded(encoding)[:keep]
        cases[f"{name} cut after {keep} bytes"] = (
            E.Audio(format=E.AudioFormat(encoding=encoding), data=data),
            INVALID,
            "data",
        )
    nan = np.full(1600, np.nan, np.float32).tobytes()
    inf = np.full(1600, np.inf, np.float32).tobytes()
    s16 = E.AUDIO_ENCODING_PCM_S16LE
    cases.update(
        {
            "empty": (E.Audio(format=S16), INVALID, "data"),
            "no encoding": (
                E.Audio(format=E.AudioFormat(sample_rate_hz=16000), data=SECOND),
                INVALID,
                "format.encoding",
            ),
            "raw without a rate": (
                E.Audio(format=E.AudioFormat(encoding=s16), data=SECOND),
                INVALID,
                "format.sample_rate_hz",
            ),
            "raw at 1 Hz": (
                E.Audio(format=E.AudioFormat(encoding=s16, sample_rate_hz=1), data=SECOND),
                INVALID,
                "format.sample_rate_hz",
            ),
            "half a sample": (E.Audio(format=S16, data=b"\0\0" * 800 + b"\0"), INVALID, "data"),
            "NaN samples": (E.Audio(format=F32, data=nan), INVALID, "data"),
            "infinite samples": (E.Audio(format=F32, data=inf), INVALID, "data"),
            "WAV rate against its header": (
                E.Audio(
                    format=E.AudioFormat(encoding=E.AUDIO_ENCODING_WAV, sample_rate_hz=8000),
                    data=encoded(E.AUDIO_ENCODING_WAV),
                ),
                INVALID,
                "data: the WAV header says 16000 Hz but the format says 8000 Hz",
            ),
            "over an hour of mu-law": (
                E.Audio(
                    format=E.AudioFormat(encoding=E.AUDIO_ENCODING_MULAW, sample_rate_hz=8000),
                    data=b"\xff" * (8000 * 3700),
                ),
                EXHAUSTED,
                "max_audio_seconds",
            ),
        }
    )
    return cases


def check(channel: grpc.Channel, case: Case, metadata: list[tuple[str, str]] = ()) -> None:
    """The case's call fails with exactly its status, and its message names the problem."""
    try:
        responses = invoke(channel, case, metadata)
    except grpc.RpcError as error:
        assert error.code() == case.code, f"{error.code()}: {error.details()}"
        assert case.reason in (error.details() or ""), error.details()
        return
    raise AssertionError(f"{case.method} succeeded with {len(responses)} responses")
