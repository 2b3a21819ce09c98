"""Every kind of bad input gets the right status and reason; the server stays SERVING."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from speechmesh.audio.v1 import audio_pb2
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE
MULAW = audio_pb2.AUDIO_ENCODING_MULAW


def detect_request(encoding=S16, rate=16000, data=b"\0\0" * 1600, **fields):
    fmt = audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate)
    return vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=fmt, data=data), **fields)


def config_message(encoding=S16, rate=16000):
    fmt = audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate)
    return vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=fmt))


def audio_message(data=b"\0\0" * 512):
    return vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=data))


UNARY_CASES = {
    "empty audio": (detect_request(data=b""), grpc.StatusCode.INVALID_ARGUMENT, "audio.data"),
    "garbage wav": (
        detect_request(audio_pb2.AUDIO_ENCODING_WAV, 0, b"\x13\x37not a wav" * 50),
        grpc.StatusCode.INVALID_ARGUMENT,
        "audio.data",
    ),
    "garbage flac": (
        detect_request(audio_pb2.AUDIO_ENCODING_FLAC, 0, b"fLaC-nope" * 40),
        grpc.StatusCode.INVALID_ARGUMENT,
        "audio.data",
    ),
    "unsupported encoding": (
        detect_request(encoding=42),
        grpc.StatusCode.INVALID_ARGUMENT,
        "audio.format.encoding",
    ),
    "encoding unset": (
        detect_request(encoding=0),
        grpc.StatusCode.INVALID_ARGUMENT,
        "audio.format.encoding",
    ),
    "sample rate 0": (
        detect_request(rate=0),
        grpc.StatusCode.INVALID_ARGUMENT,
        "audio.format.sample_rate_hz",
    ),
    "sample rate 1 MHz": (
        detect_request(rate=1_000_000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "audio.format.sample_rate_hz",
    ),
    "odd byte count": (
        detect_request(data=b"\0" * 3201),
        grpc.StatusCode.INVALID_ARGUMENT,
        "audio.data",
    ),
    "threshold out of range": (
        detect_request(options=vad_pb2.VadOptions(threshold=1.5)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.threshold",
    ),
    "unknown model": (detect_request(model="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
    "2 h of audio": (
        detect_request(MULAW, 8000, b"\xff" * (8000 * 7200)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "max_audio_seconds",
    ),
    "oversized message": (
        detect_request(data=b"\0\0" * (40 * 1024 * 1024)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "larger than max",
    ),
}

STREAM_CASES = {
    "no config at all": ([], "config"),
    "audio before config": ([audio_message(), config_message()], "config"),
    "second config": ([config_message(), audio_message(), config_message()], "requests[2]"),
    "empty message": ([config_message(), vad_pb2.StreamingDetectRequest()], "requests[1]"),
    "stream of an unstreamable encoding": (
        [config_message(audio_pb2.AUDIO_ENCODING_FLAC, 0)],
        "config.format.encoding",
    ),
    "stream sample rate 0": ([config_message(rate=0)], "config.format.sample_rate_hz"),
    "stream ends inside a sample": ([config_message(), audio_message(b"\0" * 1025)], "stray"),
}


def assert_still_serving(server):
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("case", list(UNARY_CASES))
def test_unary_bad_input(vad_server, case):
    request, code, reason = UNARY_CASES[case]
    with vad_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        vad_pb2_grpc.VoiceActivityStub(channel).Detect(request, timeout=60)
    assert raised.value.code() == code, raised.value.details()
    assert reason in raised.value.details()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        status = rpc_status.from_call(raised.value)
        bad_request = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad_request)
        assert bad_request.field_violations[0].field == reason
    assert_still_serving(vad_server)


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_streaming_bad_input(vad_server, case):
    messages, reason = STREAM_CASES[case]
    with vad_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        list(vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(iter(messages), timeout=30))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert reason in raised.value.details()
    assert_still_serving(vad_server)
