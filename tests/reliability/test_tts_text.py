"""Text a phonemizer cannot read is refused with the field and the character, unary and
bidi; the TTS server stays SERVING."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("tts")


def violated_field(error: grpc.RpcError) -> str:
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.from_call(error).details[0].Unpack(bad_request)
    return bad_request.field_violations[0].field


@pytest.mark.parametrize("text", ["hello\x00 world", "bell\x07", "escape \x1b[31m red"])
def test_control_characters_in_text_are_refused(tts_server, text):
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
            tts_pb2.SynthesizeRequest(text=text), timeout=60
        )
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert violated_field(error) == "text"
    bad = next(c for c in text if ord(c) < 32)
    assert f"U+{ord(bad):04X} at position {text.index(bad)}" in error.details()
    assert tts_server.health() == health_pb2.HealthCheckResponse.SERVING


def test_control_characters_in_a_bidi_stream_name_the_message(tts_server):
    requests = [
        tts_pb2.BidiSynthesizeRequest(config=tts_pb2.BidiSynthesizeConfig()),
        tts_pb2.BidiSynthesizeRequest(text="Fine so far. "),
        tts_pb2.BidiSynthesizeRequest(text="then a\x00NUL"),
    ]
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        list(tts_pb2_grpc.TextToSpeechStub(channel).BidiSynthesize(iter(requests), timeout=60))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_field(raised.value) == "requests[2].text"
    assert tts_server.health() == health_pb2.HealthCheckResponse.SERVING


def test_tabs_and_line_breaks_are_speech_text(tts_server):
    with tts_server.channel() as channel:
        response = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
            tts_pb2.SynthesizeRequest(text="Hello\tthere.\r\nHow are you?"), timeout=60
        )
    assert len(response.audio.data) > 0
