"""NaN and infinite float options are refused with INVALID_ARGUMENT naming the field:
they pass every ordered check (`nan < 0` is False), so they used to be accepted."""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from speechmesh.audio.v1 import audio_pb2
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
BAD_NUMBERS = [math.nan, math.inf, -math.inf]
FLOAT_OPTIONS = ["threshold", "negative_threshold", "max_speech_duration_s"]


def violated_field(error: grpc.RpcError) -> str:
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.from_call(error).details[0].Unpack(bad_request)
    return bad_request.field_violations[0].field


@pytest.mark.parametrize("name", FLOAT_OPTIONS)
@pytest.mark.parametrize("number", BAD_NUMBERS, ids=["nan", "inf", "-inf"])
def test_vad_detect_refuses_non_finite_options(vad_server, name, number):
    request = vad_pb2.DetectRequest(
        audio=audio_pb2.Audio(format=S16, data=b"\0\0" * 1600),
        options=vad_pb2.VadOptions(**{name: number}),
    )
    with vad_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        vad_pb2_grpc.VoiceActivityStub(channel).Detect(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_field(raised.value) == f"options.{name}"
    assert vad_server.health() == health_pb2.HealthCheckResponse.SERVING


def test_stt_stream_refuses_a_nan_utterance_limit(stt_server):
    options = stt_pb2.RecognitionOptions(
        vad_options=vad_pb2.VadOptions(max_speech_duration_s=math.nan)
    )
    requests = [
        stt_pb2.StreamingRecognizeRequest(
            config=stt_pb2.StreamingRecognizeConfig(format=S16, options=options)
        ),
        stt_pb2.StreamingRecognizeRequest(audio=audio_pb2.AudioChunk(data=b"\0\0" * 1600)),
    ]
    with stt_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        list(stt_pb2_grpc.SpeechToTextStub(channel).StreamingRecognize(iter(requests), timeout=60))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_field(raised.value) == "config.options.vad_options.max_speech_duration_s"
    assert stt_server.health() == health_pb2.HealthCheckResponse.SERVING
