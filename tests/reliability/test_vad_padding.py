"""Padding that leaves a segment no room under max_speech_duration_s used to make the
detector report no speech at all; it is refused, naming the field and the rule."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from support import speech_in_silence

from speechmesh.audio.v1 import audio_pb2
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)


def violated_field(error: grpc.RpcError) -> str:
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.from_call(error).details[0].Unpack(bad_request)
    return bad_request.field_violations[0].field


def detect(server, options: vad_pb2.VadOptions) -> vad_pb2.DetectResponse:
    clip = speech_in_silence([0.5, 0.5], rate=16000)
    request = vad_pb2.DetectRequest(
        audio=audio_pb2.Audio(format=S16, data=clip.pcm16()), options=options
    )
    with server.channel() as channel:
        return vad_pb2_grpc.VoiceActivityStub(channel).Detect(request, timeout=30)


@pytest.mark.xdist_group("vad")
def test_padding_that_leaves_no_room_for_speech_is_refused(vad_server):
    with pytest.raises(grpc.RpcError) as raised:
        detect(vad_server, vad_pb2.VadOptions(max_speech_duration_s=2.0, speech_pad_ms=1000))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(raised.value) == "options.max_speech_duration_s"
    assert "speech_pad_ms (1000 ms)" in raised.value.details()
    # With room left the same limit finds the speech.
    found = detect(vad_server, vad_pb2.VadOptions(max_speech_duration_s=2.0, speech_pad_ms=200))
    assert len(found.segments) >= 1
    assert vad_server.health() == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.xdist_group("stt")
def test_stt_refuses_padding_wider_than_its_window(stt_server):
    options = stt_pb2.RecognitionOptions(
        vad_filter=True, vad_options=vad_pb2.VadOptions(speech_pad_ms=20_000)
    )
    request = stt_pb2.RecognizeRequest(
        audio=audio_pb2.Audio(format=S16, data=b"\0\0" * 16000), options=options
    )
    with stt_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        stt_pb2_grpc.SpeechToTextStub(channel).Recognize(request, timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(raised.value) == "options.vad_options.max_speech_duration_s"
    assert "speech_pad_ms (20000 ms)" in raised.value.details()
