"""Bad input to every conversion RPC gets the right status and reason; the server stays up."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

pytestmark = pytest.mark.xdist_group("conversion")
S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE
F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
MULAW = audio_pb2.AUDIO_ENCODING_MULAW
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def audio(encoding=S16, rate=16000, data=b"\0\0" * 1600):
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate), data=data
    )


def f32(values) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


# (audio, where the reason is, code): the foundation matrix, for any audio field.
AUDIO_CASES = {
    "empty audio": (audio(data=b""), "data", INVALID),
    "garbage wav": (
        audio(audio_pb2.AUDIO_ENCODING_WAV, 0, b"\x13\x37not a wav" * 50),
        "data",
        INVALID,
    ),
    "garbage flac": (audio(audio_pb2.AUDIO_ENCODING_FLAC, 0, b"fLaC-nope" * 40), "data", INVALID),
    "unsupported encoding": (audio(encoding=42), "format.encoding", INVALID),
    "encoding unset": (audio(encoding=0), "format.encoding", INVALID),
    "sample rate 0": (audio(rate=0), "format.sample_rate_hz", INVALID),
    "sample rate 1 MHz": (audio(rate=1_000_000), "format.sample_rate_hz", INVALID),
    "odd byte count": (audio(data=b"\0" * 3201), "data", INVALID),
    "NaN samples": (audio(F32, data=f32([0.1, np.nan] * 8000)), "data", INVALID),
    "infinite samples": (audio(F32, data=f32([0.1, np.inf] * 8000)), "data", INVALID),
    "2 h of audio": (
        audio(MULAW, 8000, b"\xff" * (8000 * 7200)),
        "max_audio_seconds",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
}


def assert_status(error: grpc.RpcError, code: grpc.StatusCode, reason: str) -> None:
    assert error.code() == code, error.details()
    assert reason in error.details(), error.details()
    if code == INVALID:
        status = rpc_status.from_call(error)
        bad_request = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad_request)
        assert bad_request.field_violations[0].field.endswith(reason), bad_request


def assert_still_serving(server):
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


def call(server, method: str, request):
    with server.channel() as channel:
        stub = {
            "Embed": conversion_pb2_grpc.SpeakerEncoderStub,
            "Restore": conversion_pb2_grpc.AudioRestorationStub,
            "Convert": conversion_pb2_grpc.VoiceConversionStub,
        }[method](channel)
        return getattr(stub, method)(request, timeout=60)


@pytest.mark.parametrize("case", list(AUDIO_CASES))
def test_embed_bad_clip(conversion_server, case):
    clip, reason, code = AUDIO_CASES[case]
    request = conversion_pb2.EmbedRequest(clips=[audio(data=b"\0\0" * 32000), clip])
    with pytest.raises(grpc.RpcError) as raised:
        call(conversion_server, "Embed", request)
    expected = reason if code != INVALID else f"clips[1].{reason}"
    assert_status(raised.value, code, expected)
    assert_still_serving(conversion_server)


EMBED_CASES = {
    "no clips": (conversion_pb2.EmbedRequest(), INVALID, "clips"),
    "silence only": (
        conversion_pb2.EmbedRequest(clips=[audio(data=b"\0\0" * 48000)]),
        INVALID,
        "clips",
    ),
    "unknown model": (
        conversion_pb2.EmbedRequest(model="nope", clips=[audio()]),
        grpc.StatusCode.NOT_FOUND,
        "nope",
    ),
    "oversized message": (
        conversion_pb2.EmbedRequest(clips=[audio(data=b"\0\0" * (40 * 1024 * 1024))]),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "larger than max",
    ),
}


@pytest.mark.parametrize("case", list(EMBED_CASES))
def test_embed_bad_request(conversion_server, case):
    request, code, reason = EMBED_CASES[case]
    with pytest.raises(grpc.RpcError) as raised:
        call(conversion_server, "Embed", request)
    assert_status(raised.value, code, reason)
    assert_still_serving(conversion_server)


@pytest.mark.parametrize("case", list(AUDIO_CASES))
def test_restore_bad_audio(conversion_server, case):
    clip, reason, code = AUDIO_CASES[case]
    with pytest.raises(grpc.RpcError) as raised:
        call(conversion_server, "Restore", conversion_pb2.RestoreRequest(audio=clip))
    assert_status(raised.value, code, reason if code != INVALID else f"audio.{reason}")
    assert_still_serving(conversion_server)


def restore_request(**fields):
    return conversion_pb2.RestoreRequest(audio=audio(), **fields)


Options = conversion_pb2.RestorationOptions
RESTORE_CASES = {
    "unknown model": (restore_request(model="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
    "an encoder as restorer": (
        restore_request(model="ge2e-resemblyzer"),
        grpc.StatusCode.NOT_FOUND,
        "ge2e-resemblyzer",
    ),
    "attenuation limit 0": (
        restore_request(options=Options(attenuation_limit_db=0)),
        INVALID,
        "options.attenuation_limit_db",
    ),
    "attenuation limit NaN": (
        restore_request(options=Options(attenuation_limit_db=float("nan"))),
        INVALID,
        "options.attenuation_limit_db",
    ),
    "options of another family": (
        restore_request(
            model="rnnoise", options=Options(voice_fixer=conversion_pb2.VoiceFixerOptions())
        ),
        INVALID,
        "options.voice_fixer",
    ),
    "post-filter beta out of range": (
        restore_request(
            options=Options(
                deep_filter_net=conversion_pb2.DeepFilterNetOptions(post_filter_beta=2.0)
            )
        ),
        INVALID,
        "options.deep_filter_net.post_filter_beta",
    ),
    "VoiceFixer mode 3": (
        restore_request(
            model="voicefixer-tiny",
            options=Options(voice_fixer=conversion_pb2.VoiceFixerOptions(mode=3)),
        ),
        INVALID,
        "options.voice_fixer.mode",
    ),
    "stereo output": (
        restore_request(output_format=audio_pb2.AudioFormat(channels=2)),
        INVALID,
        "output_format.channels",
    ),
    "output rate 1 MHz": (
        restore_request(output_format=audio_pb2.AudioFormat(sample_rate_hz=1_000_000)),
        INVALID,
        "output_format.sample_rate_hz",
    ),
}


@pytest.mark.parametrize("case", list(RESTORE_CASES))
def test_restore_bad_request(conversion_server, case):
    request, code, reason = RESTORE_CASES[case]
    with pytest.raises(grpc.RpcError) as raised:
        call(conversion_server, "Restore", request)
    assert_status(raised.value, code, reason)
    assert_still_serving(conversion_server)


def restore_config(encoding=S16, rate=16000, **fields):
    fmt = audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate)
    return conversion_pb2.StreamingRestoreRequest(
        config=conversion_pb2.StreamingRestoreConfig(format=fmt, **fields)
    )


def restore_audio(data=b"\0\0" * 512):
    return conversion_pb2.StreamingRestoreRequest(audio=audio_pb2.AudioChunk(data=data))


STREAM_CASES = {
    "no config at all": ([], "config"),
    "audio before config": ([restore_audio(), restore_config()], "config"),
    "second config": ([restore_config(), restore_audio(), restore_config()], "requests[2]"),
    "empty message": (
        [restore_config(), conversion_pb2.StreamingRestoreRequest()],
        "requests[1]",
    ),
    "stream of an unstreamable encoding": (
        [restore_config(audio_pb2.AUDIO_ENCODING_FLAC, 0)],
        "config.format.encoding",
    ),
    "stream sample rate 0": ([restore_config(rate=0)], "config.format.sample_rate_hz"),
    "stream ends inside a sample": ([restore_config(), restore_audio(b"\0" * 1025)], "stray"),
    "NaN in a float stream": (
        [restore_config(F32), restore_audio(f32([0.0, np.nan] * 256))],
        "audio",
    ),
    "WAV output of a stream": (
        [
            restore_config(
                output_format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV)
            )
        ],
        "config.output_format.encoding",
    ),
    "options of another family": (
        [
            restore_config(
                model="rnnoise",
                options=Options(deep_filter_net=conversion_pb2.DeepFilterNetOptions()),
            )
        ],
        "config.options.deep_filter_net",
    ),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_streaming_restore_bad_input(conversion_server, case):
    messages, reason = STREAM_CASES[case]
    with conversion_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        stub = conversion_pb2_grpc.AudioRestorationStub(channel)
        list(stub.StreamingRestore(iter(messages), timeout=30))
    assert raised.value.code() == INVALID, raised.value.details()
    assert reason in raised.value.details()
    assert_still_serving(conversion_server)


SECOND = b"\0\0" * 16000  # one second of 16 kHz silence
TARGET = conversion_pb2.ConvertRequest(target_audio=audio(data=SECOND * 2)).target_audio


@pytest.mark.parametrize("case", list(AUDIO_CASES))
def test_convert_bad_source(conversion_server, case):
    clip, reason, code = AUDIO_CASES[case]
    request = conversion_pb2.ConvertRequest(source=clip, target_audio=TARGET)
    with pytest.raises(grpc.RpcError) as raised:
        call(conversion_server, "Convert", request)
    assert_status(raised.value, code, reason if code != INVALID else f"source.{reason}")
    assert_still_serving(conversion_server)


@pytest.mark.parametrize("case", [c for c in AUDIO_CASES if AUDIO_CASES[c][2] == INVALID])
def test_convert_bad_target_audio(conversion_server, case):
    clip, reason, _ = AUDIO_CASES[case]
    request = conversion_pb2.ConvertRequest(source=audio(data=SECOND), target_audio=clip)
    with pytest.raises(grpc.RpcError) as raised:
        call(conversion_server, "Convert", request)
    assert_status(raised.value, INVALID, f"target_audio.{reason}")
    assert_still_serving(conversion_server)


def convert_request(**fields):
    fields.setdefault("source", audio(data=SECOND))
    if "target_embedding" not in fields:
        fields.setdefault("target_audio", TARGET)
    return conversion_pb2.ConvertRequest(**fields)


def embedding(family="openvoice-v2", size=8, value=0.1):
    return audio_pb2.SpeakerEmbedding(model_family=family, values=[value] * size)


CONVERT_CASES = {
    "no target": (
        conversion_pb2.ConvertRequest(source=audio(data=SECOND)),
        INVALID,
        "target",
    ),
    "target shorter than the minimum": (
        convert_request(target_audio=audio(data=b"\0\0" * 8000)),
        INVALID,
        "target_audio",
    ),
    "target embedding of another family": (
        convert_request(target_embedding=embedding("ge2e-resemblyzer")),
        INVALID,
        "target_embedding.model_family",
    ),
    "target embedding without a family": (
        convert_request(target_embedding=embedding("")),
        INVALID,
        "target_embedding.model_family",
    ),
    "target embedding of another size": (
        convert_request(target_embedding=embedding(size=256)),
        INVALID,
        "target_embedding.values",
    ),
    "NaN in an embedding": (
        convert_request(target_embedding=embedding(value=float("nan"))),
        INVALID,
        "target_embedding.values",
    ),
    "source embedding of another family": (
        convert_request(source_embedding=embedding("openvoice-v1")),
        INVALID,
        "source_embedding.model_family",
    ),
    "negative tau": (
        convert_request(options=conversion_pb2.ConversionOptions(tau=-1)),
        INVALID,
        "options.tau",
    ),
    "a restorer as converter": (
        convert_request(model="rnnoise"),
        grpc.StatusCode.NOT_FOUND,
        "rnnoise",
    ),
    "source too short to embed": (
        convert_request(source=audio(data=b"\0\0" * 4000)),
        INVALID,
        "source",
    ),
}


@pytest.mark.parametrize("case", list(CONVERT_CASES))
def test_convert_bad_request(conversion_server, case):
    request, code, reason = CONVERT_CASES[case]
    with pytest.raises(grpc.RpcError) as raised:
        call(conversion_server, "Convert", request)
    assert_status(raised.value, code, reason)
    assert_still_serving(conversion_server)


def convert_config(encoding=S16, rate=16000, **fields):
    if "target_embedding" not in fields and "target_audio" not in fields:
        fields["target_embedding"] = embedding()
    fmt = audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate)
    return conversion_pb2.StreamingConvertRequest(
        config=conversion_pb2.StreamingConvertConfig(format=fmt, **fields)
    )


def convert_audio(data=b"\0\0" * 512):
    return conversion_pb2.StreamingConvertRequest(audio=audio_pb2.AudioChunk(data=data))


CONVERT_STREAM_CASES = {
    "no config at all": ([], "config"),
    "audio before config": ([convert_audio(), convert_config()], "config"),
    "second config": ([convert_config(), convert_audio(), convert_config()], "requests[2]"),
    "no target": (
        [
            conversion_pb2.StreamingConvertRequest(
                config=conversion_pb2.StreamingConvertConfig(
                    format=audio_pb2.AudioFormat(encoding=S16, sample_rate_hz=16000)
                )
            )
        ],
        "config.target",
    ),
    "target shorter than the minimum": (
        [convert_config(target_audio=audio(data=b"\0\0" * 8000))],
        "config.target_audio",
    ),
    "target of another family": (
        [convert_config(target_embedding=embedding("harmonyspeech-v1", 256))],
        "config.target_embedding.model_family",
    ),
    "stream too short to embed its source": (
        [convert_config(), convert_audio()],
        "config.source_embedding",
    ),
    "empty message": (
        [convert_config(), conversion_pb2.StreamingConvertRequest()],
        "requests[1]",
    ),
    "stream of an unstreamable encoding": (
        [convert_config(audio_pb2.AUDIO_ENCODING_OGG_OPUS, 0)],
        "config.format.encoding",
    ),
    "stream ends inside a sample": (
        [convert_config(source_embedding=embedding()), convert_audio(b"\0" * 1025)],
        "stray",
    ),
    "stream sample rate 0": ([convert_config(rate=0)], "config.format.sample_rate_hz"),
    "NaN in a float stream": (
        [convert_config(F32), convert_audio(f32([0.0, np.nan] * 256))],
        "audio",
    ),
    "FLAC output of a stream": (
        [
            convert_config(
                output_format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_FLAC)
            )
        ],
        "config.output_format.encoding",
    ),
}


@pytest.mark.parametrize("case", list(CONVERT_STREAM_CASES))
def test_streaming_convert_bad_input(conversion_server, case):
    messages, reason = CONVERT_STREAM_CASES[case]
    with conversion_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        stub = conversion_pb2_grpc.VoiceConversionStub(channel)
        list(stub.StreamingConvert(iter(messages), timeout=30))
    assert raised.value.code() == INVALID, raised.value.details()
    assert reason in raised.value.details()
    assert_still_serving(conversion_server)
