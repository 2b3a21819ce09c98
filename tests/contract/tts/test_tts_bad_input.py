"""Bad input to TextToSpeech and Vocoder gets the right status and reason; the server
stays SERVING."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from speechmesh.audio.v1 import audio_pb2
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("tts")

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MAX_TEXT_CHARS = 20_000  # the default limits.max_text_chars


def request(text="Hello.", **fields) -> tts_pb2.SynthesizeRequest:
    return tts_pb2.SynthesizeRequest(text=text, **fields)


def options(**fields) -> tts_pb2.SynthesisOptions:
    return tts_pb2.SynthesisOptions(**fields)


UNARY_CASES = {
    "empty text": (request(""), INVALID, "text"),
    "whitespace only": (request(" \n\t"), INVALID, "text"),
    "1 MB of text": (request("word " * 200_000), INVALID, "text"),
    "speed 0": (request(options=options(speed=0)), INVALID, "options.speed"),
    "negative speed": (request(options=options(speed=-1.5)), INVALID, "options.speed"),
    "pitch on piper": (request(options=options(pitch=1.2)), INVALID, "options.pitch"),
    "another family's options": (
        request(options=options(kitten_tts=tts_pb2.KittenTtsOptions(clean_text=True))),
        INVALID,
        "options.kitten_tts",
    ),
    "negative noise": (
        request(options=options(piper=tts_pb2.PiperOptions(noise_scale=-1))),
        INVALID,
        "options.piper.noise_scale",
    ),
    "speaker embedding of no family": (
        request(options=options(speaker_embedding=audio_pb2.SpeakerEmbedding(values=[0.1]))),
        INVALID,
        "options.speaker_embedding.model_family",
    ),
    "unsupported encoding": (
        request(output_format=audio_pb2.AudioFormat(encoding=42)),
        INVALID,
        "output_format.encoding",
    ),
    "stereo output": (
        request(output_format=audio_pb2.AudioFormat(encoding=1, channels=2)),
        INVALID,
        "output_format.channels",
    ),
    "output rate 1 MHz": (
        request(output_format=audio_pb2.AudioFormat(encoding=1, sample_rate_hz=1_000_000)),
        INVALID,
        "output_format.sample_rate_hz",
    ),
    "unknown voice": (request(options=options(voice="amy")), grpc.StatusCode.NOT_FOUND, "joe"),
    "unknown model": (request(model="nope"), grpc.StatusCode.NOT_FOUND, "piper-joe"),
}


def assert_still_serving(server):
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


def field_violation(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return bad_request.field_violations[0].field


@pytest.mark.parametrize("case", list(UNARY_CASES))
def test_unary_bad_input(tts_server, case):
    message, code, reason = UNARY_CASES[case]
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(message, timeout=60)
    assert raised.value.code() == code, raised.value.details()
    assert reason in raised.value.details()
    if code == INVALID:
        assert field_violation(raised.value) == reason
    assert_still_serving(tts_server)


def test_text_over_the_limit_names_the_limit(tts_server):
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        tts_pb2_grpc.TextToSpeechStub(channel).StreamingSynthesize(
            tts_pb2.StreamingSynthesizeRequest(text="x" * (MAX_TEXT_CHARS + 1)), timeout=60
        ).next()
    assert raised.value.code() == INVALID
    assert f"max_text_chars is {MAX_TEXT_CHARS}" in raised.value.details()


def test_an_unknown_voice_lists_the_known_ones(tts_server):
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
            request(model="kitten-tiny", options=options(voice="Tom")), timeout=60
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "expr-voice-5-m" in raised.value.details() and "Bella" in raised.value.details()


def raw_call(channel, method: str, streaming: bool):
    path = f"/speechmesh.tts.v1.TextToSpeech/{method}"
    if streaming:
        return channel.unary_stream(path)
    return channel.unary_unary(path)


# Field 3 (text) of SynthesizeRequest holding bytes that are not UTF-8. Python clients
# cannot build this (protobuf refuses); clients in other languages can send it.
INVALID_UTF8_REQUEST = b"\x1a\x04ab\xff\xfe"


@pytest.mark.parametrize(
    ("method", "streaming"), [("Synthesize", False), ("StreamingSynthesize", True)]
)
def test_invalid_utf8_text_is_invalid_argument(tts_server, method, streaming):
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        call = raw_call(channel, method, streaming)(INVALID_UTF8_REQUEST, timeout=30)
        if streaming:
            list(call)
    assert raised.value.code() == INVALID, raised.value.details()
    assert "UTF-8" in raised.value.details()
    assert_still_serving(tts_server)


def test_invalid_utf8_in_a_bidi_text_piece_is_invalid_argument(tts_server):
    config = tts_pb2.BidiSynthesizeRequest(
        config=tts_pb2.BidiSynthesizeConfig()
    ).SerializeToString()
    bad_text = b"\x12\x03a\xc3("  # field 2 (text), a truncated two-byte sequence
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        call = channel.stream_stream("/speechmesh.tts.v1.TextToSpeech/BidiSynthesize")
        list(call(iter([config, bad_text]), timeout=30))
    assert raised.value.code() == INVALID
    assert "UTF-8" in raised.value.details()
    assert_still_serving(tts_server)


def bidi_text(text: str) -> tts_pb2.BidiSynthesizeRequest:
    return tts_pb2.BidiSynthesizeRequest(text=text)


BIDI_CONFIG = tts_pb2.BidiSynthesizeRequest(config=tts_pb2.BidiSynthesizeConfig())
BIDI_CASES = {
    "text before config": ([bidi_text("Hi."), BIDI_CONFIG], "config"),
    "second config": ([BIDI_CONFIG, bidi_text("Hi."), BIDI_CONFIG], "requests[2]"),
    "empty message": ([BIDI_CONFIG, tts_pb2.BidiSynthesizeRequest()], "requests[1]"),
    "speed below zero in the config": (
        [
            tts_pb2.BidiSynthesizeRequest(
                config=tts_pb2.BidiSynthesizeConfig(options=options(speed=-1))
            )
        ],
        "config.options.speed",
    ),
    "bad output format in the config": (
        [
            tts_pb2.BidiSynthesizeRequest(
                config=tts_pb2.BidiSynthesizeConfig(
                    output_format=audio_pb2.AudioFormat(encoding=99)
                )
            )
        ],
        "config.output_format.encoding",
    ),
    "a text piece over the limit": (
        [BIDI_CONFIG, bidi_text("x" * (MAX_TEXT_CHARS + 1))],
        "requests[1].text",
    ),
    "the stream's text over the limit": (
        [BIDI_CONFIG, bidi_text("Hi "), bidi_text("y" * (MAX_TEXT_CHARS - 2))],
        "requests[2].text",
    ),
}


@pytest.mark.parametrize("case", list(BIDI_CASES))
def test_bidi_bad_input(tts_server, case):
    messages, reason = BIDI_CASES[case]
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        list(tts_pb2_grpc.TextToSpeechStub(channel).BidiSynthesize(iter(messages), timeout=60))
    assert raised.value.code() == INVALID, raised.value.details()
    assert reason in raised.value.details()
    assert_still_serving(tts_server)


def test_a_model_that_makes_audio_directly_has_no_spectrogram(tts_server):
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        tts_pb2_grpc.TextToSpeechStub(channel).SynthesizeSpectrogram(
            tts_pb2.SynthesizeSpectrogramRequest(model="piper-joe", text="Hi."), timeout=30
        )
    assert raised.value.code() == INVALID
    assert "no spectrogram output" in raised.value.details()
    assert field_violation(raised.value) == "model"
    with tts_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        tts_pb2_grpc.TextToSpeechStub(channel).SynthesizeSpectrogram(
            tts_pb2.SynthesizeSpectrogramRequest(text="Hi."), timeout=30
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


MEL = audio_pb2.Tensor(shape=[80, 2], dtype=audio_pb2.DATA_TYPE_FLOAT32, data=b"\0" * 640)


def test_vocoding_needs_a_vocoder_model(tts_server):
    with tts_server.channel() as channel:
        vocoder = tts_pb2_grpc.VocoderStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            vocoder.Vocode(tts_pb2.VocodeRequest(model="piper-joe", mel=MEL), timeout=30)
        assert raised.value.code() == INVALID
        assert "does not vocode" in raised.value.details()
        assert field_violation(raised.value) == "model"
        with pytest.raises(grpc.RpcError) as raised:
            vocoder.Vocode(tts_pb2.VocodeRequest(mel=MEL), timeout=30)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no vocoder" in raised.value.details()
        config = tts_pb2.StreamingVocodeRequest(
            config=tts_pb2.StreamingVocodeConfig(model="kitten-tiny")
        )
        with pytest.raises(grpc.RpcError) as raised:
            list(vocoder.StreamingVocode(iter([config]), timeout=30))
        assert raised.value.code() == INVALID
    assert_still_serving(tts_server)
