"""NaN and infinite TTS options are refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("tts")

CASES = {
    "options.speed": lambda n: tts_pb2.SynthesisOptions(speed=n),
    "options.piper.noise_scale": lambda n: tts_pb2.SynthesisOptions(
        piper=tts_pb2.PiperOptions(noise_scale=n)
    ),
    "options.piper.noise_w": lambda n: tts_pb2.SynthesisOptions(
        piper=tts_pb2.PiperOptions(noise_w=n)
    ),
    "options.piper.length_scale": lambda n: tts_pb2.SynthesisOptions(
        piper=tts_pb2.PiperOptions(length_scale=n)
    ),
}


@pytest.mark.parametrize("field", list(CASES))
@pytest.mark.parametrize("number", [math.nan, math.inf], ids=["nan", "inf"])
def test_tts_refuses_non_finite_options(tts_server, field, number):
    request = tts_pb2.SynthesizeRequest(text="Hello.", options=CASES[field](number))
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.from_call(raised.value).details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == field
