"""The gateway answers with the status the backends would: a wrong-family embedding is
INVALID_ARGUMENT from the model's own check, a model that failed to load on every
replica is FAILED_PRECONDITION naming the load error, never UNAVAILABLE "retry shortly"
(which sends clients into retries that cannot succeed)."""

from __future__ import annotations

import grpc
import pytest
from support import (
    conversion_config,
    gateway_config,
    start_server,
    stream_convert,
    wait_until,
)

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

pytestmark = pytest.mark.xdist_group("gateway")
S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
SOURCE = audio_pb2.Audio(format=S16, data=b"\0\0" * 16000)
FAILED = grpc.StatusCode.FAILED_PRECONDITION
GE2E = audio_pb2.SpeakerEmbedding(model_family="ge2e-resemblyzer", values=[0.1] * 256)


@pytest.fixture(scope="module")
def gateway(conversion_server, tmp_path_factory):
    config = gateway_config({"conversion": conversion_server.address})
    server = start_server("gateway", config, tmp_path_factory.mktemp("gateway-statuses"))
    yield server
    server.stop()


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def convert(server, request) -> conversion_pb2.ConvertResponse:
    with server.channel() as channel:
        return conversion_pb2_grpc.VoiceConversionStub(channel).Convert(request, timeout=30)


@pytest.mark.parametrize("model", ["openvoice-v2-tiny", "openvoice-v1-tiny", ""])
def test_a_wrong_family_target_is_invalid_argument_through_the_gateway(
    gateway, conversion_server, model
):
    request = conversion_pb2.ConvertRequest(model=model, source=SOURCE, target_embedding=GE2E)
    through = refused(lambda: convert(gateway, request))
    direct = refused(lambda: convert(conversion_server, request))
    assert through.code() == grpc.StatusCode.INVALID_ARGUMENT, through.details()
    assert "target_embedding.model_family" in through.details()
    assert "'ge2e-resemblyzer' embedding cannot be used" in through.details()
    assert (through.code(), through.details()) == (direct.code(), direct.details())


def test_a_wrong_family_stream_target_is_invalid_argument_through_the_gateway(gateway):
    config = conversion_pb2.StreamingConvertConfig(
        model="openvoice-v2-tiny", format=S16, target_embedding=GE2E
    )
    # The config alone: the refusal comes at the config, and audio written after it
    # would race the end of the call on the client's side.
    error = refused(lambda: stream_convert(gateway, b"", config, 3200))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "config.target_embedding.model_family" in error.details()
    assert gateway.health() == 1


def test_a_model_that_failed_to_load_is_failed_precondition(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    models = [{"id": "openvoice-broken", "family": "openvoice-v2", "source": str(missing)}]
    backend = start_server("conversion", conversion_config(models), tmp_path, wait_serving=False)
    gateway = start_server(
        "gateway", gateway_config({"conversion": backend.address}), tmp_path, wait_serving=False
    )
    try:
        request = conversion_pb2.ConvertRequest(
            model="openvoice-broken", source=SOURCE, target_embedding=GE2E
        )
        # The model fails at once; the gateway sees it at its next refresh (0.5 s).
        wait_until(lambda: refused(lambda: convert(backend, request)).code() == FAILED, 30)
        wait_until(lambda: refused(lambda: convert(gateway, request)).code() == FAILED, 10)
        for model in ("openvoice-broken", ""):
            request.model = model
            error = refused(lambda: convert(gateway, request))
            assert error.code() == FAILED, error.details()
            assert "failed to load on every replica" in error.details()
            assert "openvoice-broken" in error.details() and str(missing) in error.details()
    finally:
        gateway.stop()
        backend.stop()
