"""MeloTTS (English) served by the TTS service: the parity run's tiny model and BERT,
a real server, real gRPC."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from parity.melotts_support import served_reference_fixtures
from support import RunningServer, start_server, wait_until
from tts_support import f32_samples, synthesize_f32, tts_config

from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("melotts-tts")
MODEL = "melotts-en"
TEXT = "Hello there, my friend. MeloTTS reads English, and this is it!"
QUIET = tts_pb2.MeloTtsOptions(noise_scale=0.0, noise_scale_w=0.0)


model, server = served_reference_fixtures("melotts", MODEL)


def synthesize(server: RunningServer, text: str = TEXT, **options) -> tts_pb2.SynthesizeResponse:
    return synthesize_f32(server, MODEL, text, **options)


def test_list_models_reports_the_speakers_of_spk2id(server: RunningServer):
    with server.channel() as channel:
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest())
    (found,) = listed.models
    assert (found.family, found.state) == ("melotts", models_pb2.MODEL_STATE_READY)
    assert list(found.languages) == ["en"]
    assert [voice.id for voice in found.voices] == ["EN-US", "EN-BR", "EN-AU"]
    assert found.native_sample_rate_hz == 16000


def test_a_seed_repeats_the_noise_and_noise_zero_needs_none(server: RunningServer):
    seeded = f32_samples(synthesize(server, seed=4))
    assert np.array_equal(seeded, f32_samples(synthesize(server, seed=4)))
    assert not np.array_equal(seeded, f32_samples(synthesize(server, seed=5)))
    quiet = f32_samples(synthesize(server, melo_tts=QUIET))
    assert np.array_equal(quiet, f32_samples(synthesize(server, melo_tts=QUIET)))
    other = f32_samples(synthesize(server, voice="EN-AU", melo_tts=QUIET))
    assert not np.array_equal(quiet, other)
    fast = f32_samples(synthesize(server, speed=2.0, melo_tts=QUIET))
    assert len(fast) < len(quiet)


@pytest.mark.parametrize(
    ("options", "text", "code", "names"),
    [
        ({"voice": "EN-XX"}, TEXT, grpc.StatusCode.NOT_FOUND, "EN-US"),
        ({"melo_tts": tts_pb2.MeloTtsOptions(sdp_ratio=1.5)}, TEXT, None, "melo_tts.sdp_ratio"),
        ({"melo_tts": tts_pb2.MeloTtsOptions(noise_scale=-1)}, TEXT, None, "noise_scale"),
        ({"openvoice": tts_pb2.OpenVoiceOptions()}, TEXT, None, "options.melo_tts"),
        ({"language": "zh"}, TEXT, grpc.StatusCode.NOT_FOUND, "language 'zh' is not served"),
        ({}, "... !?", None, "text"),
        (
            {"melo_tts": tts_pb2.MeloTtsOptions(sdp_ratio=1.0, noise_scale_w=1e4)},
            TEXT,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "frames per piece",
        ),
    ],
    ids=[
        "unknown-speaker",
        "sdp-ratio",
        "noise",
        "other-family",
        "language",
        "unreadable",
        "durations-out-of-bounds",
    ],
)
def test_bad_input_is_refused_with_the_field(server: RunningServer, options, text, code, names):
    with pytest.raises(grpc.RpcError) as raised:
        synthesize(server, text, **options)
    assert raised.value.code() == (code or grpc.StatusCode.INVALID_ARGUMENT)
    assert names in raised.value.details()
    assert f32_samples(synthesize(server, melo_tts=QUIET)).size > 0


def test_missing_weights_are_failed_precondition(model, tmp_path):
    missing = dict(model, source=str(tmp_path / "nothing"))
    (tmp_path / "srv").mkdir()
    running = start_server(
        "tts", tts_config([missing], drain_grace_s=5), tmp_path / "srv", wait_serving=False
    )
    try:
        with running.channel() as channel:
            stub = models_pb2_grpc.ModelsStub(channel)

            def failed():
                (found,) = stub.ListModels(models_pb2.ListModelsRequest()).models
                return found.state == models_pb2.MODEL_STATE_FAILED

            wait_until(failed)
            with pytest.raises(grpc.RpcError) as raised:
                tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
                    tts_pb2.SynthesizeRequest(model=MODEL, text="Hi."), timeout=30
                )
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        running.stop()
