"""A HarmonySpeech V1 encoder checkpoint served; missing weights of any family are clear."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from checkpoints import save_harmonyspeech_encoder
from grpc_health.v1 import health_pb2
from support import conversion_config, piper_untrimmed, start_server
from voices import wav_bytes

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.models.v1 import models_pb2, models_pb2_grpc


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    save_harmonyspeech_encoder(root / "harmony")
    (root / "empty").mkdir()
    models = [
        {
            "id": "harmony-tiny",
            "family": "harmonyspeech-v1-encoder",
            "source": str(root / "harmony"),
        },
        {
            "id": "harmony-missing",
            "family": "harmonyspeech-v1-encoder",
            "source": str(root / "empty"),
        },
        {"id": "openvoice-missing", "family": "openvoice-v2", "source": str(root / "empty")},
        {"id": "voicefixer-missing", "family": "voicefixer", "source": str(root / "empty")},
    ]
    running = start_server("conversion", conversion_config(models), root, wait_serving=False)
    deadline = time.monotonic() + 60
    while running.health("model/harmony-tiny") != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline, "".join(running.log)
        time.sleep(0.05)
    yield running
    running.stop()


def embed(server, model):
    audio, rate = piper_untrimmed("The quick brown fox jumps over the lazy dog")
    clip = audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV),
        data=wav_bytes(audio, rate),
    )
    with server.channel() as channel:
        stub = conversion_pb2_grpc.SpeakerEncoderStub(channel)
        return stub.Embed(conversion_pb2.EmbedRequest(model=model, clips=[clip]), timeout=60)


def test_harmonyspeech_embeddings_carry_their_family_and_size(server):
    response = embed(server, "harmony-tiny")
    assert response.embedding.model_family == "harmonyspeech-v1"
    values = np.asarray(response.embedding.values)
    assert values.shape == (6,) and abs(np.linalg.norm(values) - 1) < 1e-5


def test_missing_weights_are_a_failed_precondition_naming_the_files(server):
    with pytest.raises(grpc.RpcError) as raised:
        embed(server, "harmony-missing")
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "config.json, encoder.pt" in raised.value.details()
    with server.channel() as channel:
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest())
    states = {m.id: m.state for m in listed.models}
    assert states == {
        "harmony-tiny": models_pb2.MODEL_STATE_READY,
        "harmony-missing": models_pb2.MODEL_STATE_FAILED,
        "openvoice-missing": models_pb2.MODEL_STATE_FAILED,
        "voicefixer-missing": models_pb2.MODEL_STATE_FAILED,
    }
    with pytest.raises(grpc.RpcError) as raised:
        embed(server, "openvoice-missing")
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "config.json and checkpoint.pth" in raised.value.details()


def test_missing_voicefixer_weights_name_the_files(server):
    request = conversion_pb2.RestoreRequest(
        model="voicefixer-missing",
        audio=audio_pb2.Audio(
            format=audio_pb2.AudioFormat(
                encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
            ),
            data=b"\0\0" * 1600,
        ),
    )
    with server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        conversion_pb2_grpc.AudioRestorationStub(channel).Restore(request, timeout=60)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "vf.ckpt" in raised.value.details()


def test_models_report_their_embedding_facts_and_the_default_of_each_service(server):
    with server.channel() as channel:
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest())
    facts = {m.id: (m.embedding_family, list(m.accepted_embedding_families)) for m in listed.models}
    assert facts == {
        "harmony-tiny": ("harmonyspeech-v1", []),
        "harmony-missing": ("harmonyspeech-v1", []),
        "openvoice-missing": ("openvoice-v2", ["openvoice-v2"]),
        "voicefixer-missing": ("", []),
    }
    # Without `default: true`, the first model configured for a service is its default
    # (configured order: harmony-tiny before harmony-missing; the listing is sorted by id).
    defaults = {m.service: m.id for m in listed.models if m.is_default}
    assert defaults == {
        "speechmesh.conversion.v1.SpeakerEncoder": "harmony-tiny",
        "speechmesh.conversion.v1.VoiceConversion": "openvoice-missing",
        "speechmesh.conversion.v1.AudioRestoration": "voicefixer-missing",
    }
