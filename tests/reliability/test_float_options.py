"""Every float option of every service refuses NaN, infinities and out-of-range numbers
with INVALID_ARGUMENT naming the field, and the server stays SERVING. NaN passes every
ordered check (`nan < 0` is False) and infinity every one-sided one, so each float is
checked by the shared validator; the table below must name every float field that a
served RPC takes (the last test walks the protos to hold it to that)."""

from __future__ import annotations

import math

import grpc
import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from indextts_checkpoint import write_checkpoint
from support import pcm16, start_server

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.indextts.v1 import indextts_pb2, indextts_pb2_grpc
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
NAN, INF = math.nan, math.inf
NOT_FINITE = (NAN, INF, -INF)
NEGATIVE = (*NOT_FINITE, -1.0)
SPEECH = pcm16((0.2 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32))


def audio() -> audio_pb2.Audio:
    return audio_pb2.Audio(format=S16, data=SPEECH)


def vad_call(server, request):
    vad_pb2_grpc.VoiceActivityStub(server.channel()).Detect(request, timeout=30)


def stt_call(server, request):
    stt_pb2_grpc.SpeechToTextStub(server.channel()).Recognize(request, timeout=60)


def tts_call(server, request):
    tts_pb2_grpc.TextToSpeechStub(server.channel()).Synthesize(request, timeout=60)


def convert_call(server, request):
    conversion_pb2_grpc.VoiceConversionStub(server.channel()).Convert(request, timeout=60)


def restore_call(server, request):
    conversion_pb2_grpc.AudioRestorationStub(server.channel()).Restore(request, timeout=60)


def indextts_call(server, request):
    indextts_pb2_grpc.IndexTTSStub(server.channel()).Synthesize(request, timeout=60)


# service → (server fixture, RPC, a valid request, the numbers each float field refuses).
# Fields left out of a list take those numbers: STT thresholds switch off at ±infinity
# (faster-whisper's None) and an average log probability or a length penalty may be
# negative; embedding values are free coordinates.
SERVICES = {
    "vad": (
        "vad_server",
        vad_call,
        lambda: vad_pb2.DetectRequest(audio=audio()),
        {
            "options.threshold": NEGATIVE,
            "options.negative_threshold": NEGATIVE,
            "options.max_speech_duration_s": NEGATIVE,
        },
    ),
    "stt": (
        "stt_server",
        stt_call,
        lambda: stt_pb2.RecognizeRequest(audio=audio()),
        {
            "options.temperatures": NEGATIVE,
            "options.vad_options.threshold": NEGATIVE,
            "options.vad_options.negative_threshold": NEGATIVE,
            "options.vad_options.max_speech_duration_s": NEGATIVE,
            "options.no_speech_threshold": (NAN, -1.0, 1.5),
            "options.log_prob_threshold": (NAN,),
            "options.compression_ratio_threshold": (NAN, -1.0, 0.0),
            "options.hallucination_silence_threshold_s": NEGATIVE,
        },
    ),
    "tts": (
        "tts_server",
        tts_call,
        lambda: tts_pb2.SynthesizeRequest(text="Hello."),
        {
            "options.speed": NEGATIVE,
            "options.pitch": NEGATIVE,
            "options.energy": NEGATIVE,
            "options.speaker_embedding.values": NOT_FINITE,
            "options.piper.noise_scale": NEGATIVE,
            "options.piper.noise_w": NEGATIVE,
            "options.piper.length_scale": NEGATIVE,
            # Families no model in this server serves: refused as another family's options.
            "options.melo_tts.sdp_ratio": (NAN,),
            "options.melo_tts.noise_scale": (NAN,),
            "options.melo_tts.noise_scale_w": (NAN,),
            "options.chatterbox.temperature": (NAN,),
            "options.chatterbox.cfg_weight": (NAN,),
            "options.chatterbox.exaggeration": (NAN,),
            "options.chatterbox.repetition_penalty": (NAN,),
            "options.chatterbox.min_p": (NAN,),
            "options.chatterbox.top_p": (NAN,),
            "options.openvoice.noise_scale": (NAN,),
            "options.openvoice.noise_scale_w": (NAN,),
            "options.openvoice.sdp_ratio": (NAN,),
        },
    ),
    "conversion": (
        "conversion_server",
        convert_call,
        lambda: conversion_pb2.ConvertRequest(
            model="openvoice-v2-tiny", source=audio(), target_audio=audio()
        ),
        {
            "options.tau": NEGATIVE,
            "target_embedding.values": NOT_FINITE,
            "source_embedding.values": NOT_FINITE,
        },
    ),
    "restoration": (
        "conversion_server",
        restore_call,
        lambda: conversion_pb2.RestoreRequest(model="deepfilternet3", audio=audio()),
        {
            "options.attenuation_limit_db": (*NEGATIVE, 0.0),
            "options.deep_filter_net.post_filter_beta": (*NEGATIVE, 1.5),
        },
    ),
    "indextts": (
        "indextts_server",
        indextts_call,
        lambda: indextts_pb2.SynthesizeRequest(text="Hello.", speaker_prompt=audio()),
        {
            **{
                f"options.emotion.vector.{name}": NEGATIVE
                for name in indextts_pb2.EmotionVector.DESCRIPTOR.fields_by_name
            },
            "options.emotion.weight": (*NEGATIVE, 1.5),
            "options.sampling.temperature": (*NEGATIVE, 0.0),
            "options.sampling.top_p": (*NEGATIVE, 1.5),
            "options.sampling.repetition_penalty": (*NEGATIVE, 0.5),
            "options.sampling.length_penalty": NOT_FINITE,
            "options.cfg_rate": NEGATIVE,
        },
    ),
}
# Options of families that no server here serves are refused as a whole message.
FOREIGN_FAMILY_OPTIONS = ("options.melo_tts", "options.chatterbox", "options.openvoice")
# The size of the tiny OpenVoice V2 converter's embeddings.
EMBEDDING_SIZE = 8


def with_number(request, path: str, number: float):
    """`request` with the float at `path` set to `number` (a repeated float gets it last)."""
    *parents, leaf = path.split(".")
    message = request
    for name in parents:
        message = getattr(message, name)
    if leaf == "values":  # a speaker embedding: a well-formed one but for `number`
        message.model_family = "openvoice-v2"
        message.values.extend([0.1] * (EMBEDDING_SIZE - 1) + [number])
    elif message.DESCRIPTOR.fields_by_name[leaf].is_repeated:
        getattr(message, leaf).append(number)
    else:
        setattr(message, leaf, number)
    return request


def violated_field(error: grpc.RpcError) -> str:
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.from_call(error).details[0].Unpack(bad_request), error.details()
    return bad_request.field_violations[0].field


def expected_field(path: str) -> str:
    foreign = [prefix for prefix in FOREIGN_FAMILY_OPTIONS if path.startswith(prefix + ".")]
    if foreign:
        return foreign[0]
    return f"{path}[0]" if path.endswith("temperatures") else path


CASES = [
    pytest.param(
        service,
        path,
        number,
        id=f"{service}-{path}-{number}",
        marks=pytest.mark.xdist_group(service),
    )
    for service, (_, _, _, fields) in SERVICES.items()
    for path, numbers in fields.items()
    for number in numbers
]


@pytest.fixture(scope="module")
def indextts_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("indextts-ckpt") / "IndexTTS-2"
    write_checkpoint(folder)
    model = {"id": "indextts-tiny", "family": "indextts2", "source": str(folder), "threads": 1}
    config = {"services": {"indextts": {"port": 0, "models": [model]}}, "drain_grace_s": 5}
    server = start_server("indextts", config, tmp_path_factory.mktemp("indextts-srv"))
    yield server
    server.stop()


@pytest.mark.parametrize(("service", "path", "number"), CASES)
def test_a_bad_float_option_is_refused_naming_the_field(request, service, path, number):
    fixture, call, base, _ = SERVICES[service]
    server = request.getfixturevalue(fixture)
    with pytest.raises(grpc.RpcError) as raised:
        call(server, with_number(base(), path, number))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_field(raised.value) == expected_field(path), raised.value.details()
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.xdist_group("stt")
def test_stt_stream_refuses_a_nan_utterance_limit(stt_server):
    options = stt_pb2.RecognitionOptions(
        vad_options=vad_pb2.VadOptions(max_speech_duration_s=math.nan)
    )
    requests = [
        stt_pb2.StreamingRecognizeRequest(
            config=stt_pb2.StreamingRecognizeConfig(format=S16, options=options)
        ),
        stt_pb2.StreamingRecognizeRequest(audio=audio_pb2.AudioChunk(data=b"\0\0" * 1600)),
    ]
    with stt_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        list(stt_pb2_grpc.SpeechToTextStub(channel).StreamingRecognize(iter(requests), timeout=60))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_field(raised.value) == "config.options.vad_options.max_speech_duration_s"
    assert stt_server.health() == health_pb2.HealthCheckResponse.SERVING


def float_fields(descriptor, prefix: str = "", seen: frozenset = frozenset()) -> list[str]:
    found = []
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            found.append(path)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type not in seen:
            found += float_fields(field.message_type, f"{path}.", seen | {field.message_type})
    return found


def test_the_table_names_every_float_option_of_the_unary_rpcs():
    requests = {
        "vad": vad_pb2.DetectRequest,
        "stt": stt_pb2.RecognizeRequest,
        "tts": tts_pb2.SynthesizeRequest,
        "conversion": conversion_pb2.ConvertRequest,
        "restoration": conversion_pb2.RestoreRequest,
        "indextts": indextts_pb2.SynthesizeRequest,
    }
    for service, message in requests.items():
        assert set(float_fields(message.DESCRIPTOR)) == set(SERVICES[service][3]), service
