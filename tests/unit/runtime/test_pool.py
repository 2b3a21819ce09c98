"""A server's model pool refuses at start a model that none of its services can serve."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health

from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.runtime.pool import ModelPool
from speechmesh.runtime.registry import service_spec


@pytest.mark.parametrize(
    ("server", "family", "service"),
    [
        # The tone-colour converter is not the TTS base speaker of the same name.
        ("tts", "openvoice-v1", "speechmesh.conversion.v1.VoiceConversion"),
        ("conversion", "openvoice-v1-base", "speechmesh.tts.v1.TextToSpeech"),
        ("vad", "faster-whisper", "speechmesh.stt.v1.SpeechToText"),
    ],
)
def test_a_family_of_another_service_is_refused_naming_all_three(server, family, service):
    spec = service_spec(server)
    config = ModelConfig(id="foreign", family=family, source="/nowhere")
    with pytest.raises(FailedPrecondition) as raised:
        ModelPool([config], health.aio.HealthServicer(), spec.grpc_services, spec.name)
    message = raised.value.message
    assert f"family {family!r} is served by {service}" in message
    assert f"which the {server} server does not serve" in message


def test_a_family_of_the_server_is_taken():
    spec = service_spec("tts")
    config = ModelConfig(id="base", family="openvoice-v1-base", source="/nowhere")
    pool = ModelPool([config], health.aio.HealthServicer(), spec.grpc_services, spec.name)
    assert [m.id for m in pool.models] == ["base"]


def test_parallel_batches_are_taken_only_by_families_that_take_concurrent_calls():
    spec = service_spec("tts")
    piper = ModelConfig(id="joe", family="piper", parallel_batches=2)
    pool = ModelPool([piper], health.aio.HealthServicer(), spec.grpc_services, spec.name)
    assert [m.config.parallel_batches for m in pool.models] == [2]
    base = ModelConfig(id="base", family="openvoice-v1-base", source="/nowhere", parallel_batches=2)
    with pytest.raises(FailedPrecondition, match="runs one batch at a time; parallel_batches"):
        ModelPool([base], health.aio.HealthServicer(), spec.grpc_services, spec.name)
