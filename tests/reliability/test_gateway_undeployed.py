"""A call for a service that no backend of the mesh hosts is NOT_FOUND, saying so:
UNAVAILABLE "retry shortly" would send clients into retries that can never succeed."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2
from support import gateway_config, start_server

from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc


@pytest.fixture(scope="module")
def vad_only_gateway(vad_server, tmp_path_factory):
    config = gateway_config({"vad": vad_server.address})
    server = start_server("gateway", config, tmp_path_factory.mktemp("gateway-vad-only"))
    yield server
    server.stop()


def test_undeployed_services_are_not_found(vad_only_gateway):
    calls = {
        "speechmesh.tts.v1.Vocoder": lambda channel: tts_pb2_grpc.VocoderStub(channel).Vocode(
            tts_pb2.VocodeRequest(), timeout=30
        ),
        "speechmesh.conversion.v1.VoiceConversion": lambda channel: (
            conversion_pb2_grpc.VoiceConversionStub(channel).Convert(
                conversion_pb2.ConvertRequest(), timeout=30
            )
        ),
    }
    with vad_only_gateway.channel() as channel:
        for service, call in calls.items():
            with pytest.raises(grpc.RpcError) as raised:
                call(channel)
            error = raised.value
            assert error.code() == grpc.StatusCode.NOT_FOUND, (service, error.details())
            assert f"no model for {service} is deployed" in error.details()
            assert "speechmesh.vad.v1.VoiceActivity" in error.details()
    assert vad_only_gateway.health() == health_pb2.HealthCheckResponse.SERVING
