"""OpenVoice V1 base speakers served by the TTS service: tiny random checkpoints in the
official layout (checkpoints/base_speakers/{EN,ZH}), a real server, real gRPC."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from checkpoints import save_openvoice_base
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from support import RunningServer, start_server, wait_until
from tts_support import F32, f32_samples, synthesize_f32, tts_config

from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("openvoice-base-tts")
MODEL = "openvoice-base"
TEXT = "Hello there, my friend. OpenVoice speaks in nine styles, and this is one of them!"
QUIET = tts_pb2.OpenVoiceOptions(noise_scale=0.0, noise_scale_w=0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    root = tmp_path_factory.mktemp("openvoice-base") / "OpenVoice"
    save_openvoice_base(root)
    models = [{"id": MODEL, "family": "openvoice-v1-base", "source": str(root), "threads": 1}]
    running = start_server(
        "tts", tts_config(models, drain_grace_s=5), tmp_path_factory.mktemp("ov-base-srv")
    )
    yield running
    running.stop()


def synthesize(server: RunningServer, text: str = TEXT, **options) -> tts_pb2.SynthesizeResponse:
    return synthesize_f32(server, MODEL, text, **options)


def test_list_models_reports_languages_styles_and_rate(server: RunningServer):
    with server.channel() as channel:
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest())
    (model,) = listed.models
    assert (model.family, model.state) == ("openvoice-v1-base", models_pb2.MODEL_STATE_READY)
    assert list(model.languages) == ["en", "zh"]
    voices = {voice.id: list(voice.languages) for voice in model.voices}
    assert voices["default"] == ["en", "zh"] and voices["whispering"] == ["en"]
    assert len(voices) == 9
    assert model.native_sample_rate_hz == 16000


def test_a_seed_repeats_the_noise_and_noise_zero_needs_none(server: RunningServer):
    seeded = f32_samples(synthesize(server, seed=4))
    assert np.array_equal(seeded, f32_samples(synthesize(server, seed=4)))
    assert not np.array_equal(seeded, f32_samples(synthesize(server, seed=5)))
    assert not np.array_equal(f32_samples(synthesize(server)), f32_samples(synthesize(server)))
    quiet = f32_samples(synthesize(server, openvoice=QUIET))
    assert np.array_equal(quiet, f32_samples(synthesize(server, openvoice=QUIET)))
    assert np.abs(quiet).max() <= 1.0  # the decoder's tanh, not normalised


def test_styles_languages_and_speed_change_the_audio(server: RunningServer):
    plain = f32_samples(synthesize(server, openvoice=QUIET))
    sad = f32_samples(synthesize(server, voice="sad", openvoice=QUIET))
    assert not np.array_equal(plain, sad)
    chinese = synthesize(server, "你好，世界。我们今天学习OpenVoice。", language="zh", seed=1)
    assert chinese.summary.total_samples > 0
    fast = f32_samples(synthesize(server, speed=2.0, openvoice=QUIET))
    assert 0.3 * len(plain) < len(fast) < 0.7 * len(plain)


def test_normalize_numbers_reaches_the_front_end(server: RunningServer):
    text = "It costs $5.50 today."
    plain = f32_samples(synthesize(server, text, openvoice=QUIET))
    options = tts_pb2.OpenVoiceOptions(noise_scale=0, noise_scale_w=0, normalize_numbers=True)
    read = f32_samples(synthesize(server, text, openvoice=options))
    spelt = f32_samples(
        synthesize(server, "It costs five dollars, fifty cents today.", openvoice=QUIET)
    )
    assert not np.array_equal(plain, read) and np.array_equal(read, spelt)


def test_every_piece_ends_in_50_ms_of_silence(server: RunningServer):
    """Two pieces ("$5.50" is cut after "$5."), each followed by rate · 0.05 / speed zeros."""
    text = "The price was five dollars and fifty cents, or $5.50 in figures, last year. Ok"
    request = tts_pb2.StreamingSynthesizeRequest(
        model=MODEL,
        text=text,
        options=tts_pb2.SynthesisOptions(openvoice=QUIET, speed=1.25),
        output_format=F32,
    )
    with server.channel() as channel:
        responses = list(
            tts_pb2_grpc.TextToSpeechStub(channel).StreamingSynthesize(request, timeout=60)
        )
    chunks = [r.chunk for r in responses if r.HasField("chunk")]
    ends = [c.audio.sample_offset + c.audio.num_samples for c in chunks if c.end_of_span]
    assert len(ends) == 2
    audio = np.frombuffer(b"".join(c.audio.data for c in chunks), "<f4")
    silence = int(16000 * 0.05 / 1.25)
    for end in ends:
        assert (
            not audio[end - silence : end].any() and audio[end - silence - 40 : end - silence].any()
        )
    unary = synthesize(server, text, openvoice=QUIET, speed=1.25)
    assert np.array_equal(audio, f32_samples(unary))


def test_bidi_reads_a_sentence_as_unary_does(server: RunningServer):
    text = "Hello there, my friend."

    def requests():
        yield tts_pb2.BidiSynthesizeRequest(
            config=tts_pb2.BidiSynthesizeConfig(
                model=MODEL,
                options=tts_pb2.SynthesisOptions(openvoice=QUIET),
                output_format=F32,
            )
        )
        for word in text.split(" "):
            yield tts_pb2.BidiSynthesizeRequest(text=word + " ")
        yield tts_pb2.BidiSynthesizeRequest(flush=tts_pb2.Flush())

    with server.channel() as channel:
        responses = list(tts_pb2_grpc.TextToSpeechStub(channel).BidiSynthesize(requests()))
    audio = b"".join(r.chunk.audio.data for r in responses if r.HasField("chunk"))
    assert any(r.HasField("flush_done") for r in responses)
    assert np.array_equal(
        np.frombuffer(audio, "<f4"), f32_samples(synthesize(server, text, openvoice=QUIET))
    )


def violated_field(error: grpc.RpcError) -> str:
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.from_call(error).details[0].Unpack(bad_request), error.details()
    return bad_request.field_violations[0].field


@pytest.mark.parametrize(
    ("text", "options", "field"),
    [
        (
            "Hi.",
            {"openvoice": tts_pb2.OpenVoiceOptions(sdp_ratio=1.5)},
            "options.openvoice.sdp_ratio",
        ),
        (
            "Hi.",
            {"openvoice": tts_pb2.OpenVoiceOptions(noise_scale=-1)},
            "options.openvoice.noise_scale",
        ),
        ("Hi.", {"piper": tts_pb2.PiperOptions(noise_scale=0.5)}, "options.piper"),
        ("Hi.", {"pitch": 1.2}, "options.pitch"),
        ("() «»", {}, "text"),
        ("Ж ✓", {"language": "zh"}, "text"),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_field(
    server: RunningServer, text, options, field
):
    with pytest.raises(grpc.RpcError) as raised:
        synthesize(server, text, **options)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_field(raised.value) == field, raised.value.details()
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


def test_a_language_not_served_is_not_found_listing_those_served(server: RunningServer):
    with pytest.raises(grpc.RpcError) as raised:
        synthesize(server, "Hi.", language="fr")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND, raised.value.details()
    assert "language 'fr' is not served" in raised.value.details()
    assert "speaks en, zh" in raised.value.details()
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


def test_a_style_the_language_lacks_is_not_found(server: RunningServer):
    with pytest.raises(grpc.RpcError) as raised:
        synthesize(server, "你好。", language="zh", voice="whispering")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "styles: default" in raised.value.details()


def test_missing_weights_fail_the_model_clearly(tmp_path):
    root = tmp_path / "OpenVoice"
    save_openvoice_base(root, languages=("EN",))
    (root / "checkpoints/base_speakers/EN/checkpoint.pth").unlink()
    models = [{"id": MODEL, "family": "openvoice-v1-base", "source": str(root), "threads": 1}]
    running = start_server("tts", tts_config(models, drain_grace_s=5), tmp_path, wait_serving=False)
    try:
        with running.channel() as channel:
            stub = models_pb2_grpc.ModelsStub(channel)

            def failed():
                (model,) = stub.ListModels(models_pb2.ListModelsRequest()).models
                return model.state == models_pb2.MODEL_STATE_FAILED

            wait_until(failed)
            with pytest.raises(grpc.RpcError) as raised:
                tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
                    tts_pb2.SynthesizeRequest(model=MODEL, text="Hi."), timeout=30
                )
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "checkpoint.pth" in raised.value.details()
    finally:
        running.stop()
