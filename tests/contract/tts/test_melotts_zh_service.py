"""MeloTTS's ZH model (Chinese with English) served by the TTS service: the parity
run's tiny model and BERT, a real server, real gRPC; bad input is refused with the field
and the server stays healthy."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from parity.melotts_support import served_reference_fixtures
from support import RunningServer, start_server, wait_until
from tts_support import f32_samples, synthesize_f32, tts_config

from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("melotts-zh-tts")
MODEL = "melotts-zh"
TEXT = "今天天气很好，我们去公园散步吧！我最近在学习machine learning。"
QUIET = tts_pb2.MeloTtsOptions(noise_scale=0.0, noise_scale_w=0.0)


model, server = served_reference_fixtures("melotts-zh", MODEL)


def synthesize(server: RunningServer, text: str = TEXT, **options) -> tts_pb2.SynthesizeResponse:
    return synthesize_f32(server, MODEL, text, **options)


def test_list_models_reports_chinese_and_the_speakers(server: RunningServer):
    with server.channel() as channel:
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest())
    (found,) = listed.models
    assert (found.family, found.state) == ("melotts", models_pb2.MODEL_STATE_READY)
    assert list(found.languages) == ["zh"]
    assert [voice.id for voice in found.voices] == ["ZH", "ZH-B"]


def test_each_piece_is_a_span_and_english_inside_is_read(server: RunningServer):
    reply = synthesize(server, language="zh", melo_tts=QUIET)
    assert reply.summary.num_spans == 2
    chinese_only = f32_samples(
        synthesize(server, "今天天气很好，我们去公园散步吧！我最近在学习。", melo_tts=QUIET)
    )
    assert f32_samples(reply).size > chinese_only.size


def violated_field(error: grpc.RpcError) -> str:
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.from_call(error).details[0].Unpack(bad_request), error.details()
    return bad_request.field_violations[0].field


def test_a_language_not_served_is_not_found_listing_those_served(server: RunningServer):
    with pytest.raises(grpc.RpcError) as raised:
        synthesize(server, TEXT, language="fr")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND, raised.value.details()
    assert "language 'fr' is not served" in raised.value.details()
    assert "speaks zh" in raised.value.details()
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("text", "options", "field", "says"),
    [
        ("Привет, мир.", {}, "text", "nothing the model can read"),
        ("©®™ ★", {}, "text", "nothing the model can read"),
        ("你好_世界。", {}, "text", "no reading"),
        (
            TEXT,
            {"melo_tts": tts_pb2.MeloTtsOptions(sdp_ratio=1.5)},
            "options.melo_tts.sdp_ratio",
            "",
        ),
    ],
    ids=["other-script", "empty-after-normalisation", "unreadable", "sdp"],
)
def test_bad_input_is_invalid_argument_naming_the_field(
    server: RunningServer, text, options, field, says
):
    with pytest.raises(grpc.RpcError) as raised:
        synthesize(server, text, **options)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_field(raised.value) == field, raised.value.details()
    assert says in raised.value.details()
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


def test_an_unknown_speaker_is_not_found_listing_the_speakers(server: RunningServer):
    with pytest.raises(grpc.RpcError) as raised:
        synthesize(server, voice="EN-US")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "speakers: ZH, ZH-B" in raised.value.details()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"source": None}, "myshell-ai/MeloTTS-Chinese"),
        ({"options": {"language": "DE"}}, "served: EN, ZH"),
    ],
    ids=["no-source", "language-not-served"],
)
def test_a_model_that_cannot_serve_fails_with_the_reason(model, tmp_path, change, reason):
    broken = {k: v for k, v in {**model, **change}.items() if v is not None}
    running = start_server(
        "tts", tts_config([broken], drain_grace_s=5), tmp_path, wait_serving=False
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
                    tts_pb2.SynthesizeRequest(model=MODEL, text="你好。"), timeout=30
                )
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason in raised.value.details()
    finally:
        running.stop()
