"""VoiceConversion on tiny OpenVoice checkpoints: timing, targets, streaming, embeddings."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from support import piper_untrimmed, stream_convert
from voices import wav_bytes

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

pytestmark = pytest.mark.xdist_group("conversion")
F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE
WAV = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV)
MODELS = ("openvoice-v2-tiny", "openvoice-v1-tiny")
RATE = 16000  # the tiny converters' rate


def say(text: str) -> audio_pb2.Audio:
    return audio_pb2.Audio(format=WAV, data=wav_bytes(*piper_untrimmed(text)))


SOURCE = "The quick brown fox jumps over the lazy dog"
TARGET = "She sells sea shells by the sea shore every summer morning"


def stubs(server):
    channel = server.channel()
    return channel, conversion_pb2_grpc.VoiceConversionStub(channel)


def convert(server, **fields) -> tuple[np.ndarray, conversion_pb2.ConvertResponse]:
    fields.setdefault("source", say(SOURCE))
    fields.setdefault("options", conversion_pb2.ConversionOptions(tau=0.0))
    fields.setdefault("output_format", audio_pb2.AudioFormat(encoding=F32))
    with server.channel() as channel:
        stub = conversion_pb2_grpc.VoiceConversionStub(channel)
        response = stub.Convert(conversion_pb2.ConvertRequest(**fields), timeout=120)
    return np.frombuffer(response.audio.data, "<f4"), response


def embed(server, model, audio) -> conversion_pb2.EmbedResponse:
    with server.channel() as channel:
        stub = conversion_pb2_grpc.SpeakerEncoderStub(channel)
        return stub.Embed(conversion_pb2.EmbedRequest(model=model, clips=[audio]), timeout=60)


@pytest.mark.parametrize("model", MODELS)
def test_convert_keeps_the_source_timing(conversion_server, model):
    audio, rate = piper_untrimmed(SOURCE)
    out, response = convert(conversion_server, model=model, target_audio=say(TARGET))
    assert response.model == model
    assert response.audio.format.sample_rate_hz == RATE
    assert response.total_samples == len(out) == round(len(audio) * RATE / rate)
    assert np.isfinite(out).all() and np.abs(out).max() > 0


def test_a_target_embedding_gives_what_the_target_audio_gives(conversion_server):
    model = MODELS[0]
    embedding = embed(conversion_server, model, say(TARGET)).embedding
    assert embedding.model_family == "openvoice-v2" and len(embedding.values) == 8
    from_audio, _ = convert(conversion_server, model=model, target_audio=say(TARGET))
    from_embedding, _ = convert(conversion_server, model=model, target_embedding=embedding)
    np.testing.assert_allclose(from_audio, from_embedding, atol=1e-6)
    other = embed(conversion_server, model, say(SOURCE)).embedding
    to_other, _ = convert(conversion_server, model=model, target_embedding=other)
    assert not np.allclose(from_embedding, to_other, atol=1e-4)


def test_tau_and_seed(conversion_server):
    options = conversion_pb2.ConversionOptions(tau=0.7, seed=11)
    first, _ = convert(conversion_server, target_audio=say(TARGET), options=options)
    again, _ = convert(conversion_server, target_audio=say(TARGET), options=options)
    np.testing.assert_array_equal(first, again)
    options.seed = 12
    other, _ = convert(conversion_server, target_audio=say(TARGET), options=options)
    assert not np.array_equal(first, other)


def stream_pcm16(server, samples: np.ndarray, config: conversion_pb2.StreamingConvertConfig):
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    return stream_convert(server, data, config, chunk_bytes=3001)


def test_streaming_convert_joins_windows_in_time(conversion_server):
    audio, rate = piper_untrimmed(SOURCE + ". " + TARGET)
    import soxr

    samples = soxr.resample(audio, rate, RATE).astype(np.float32)
    target = embed(conversion_server, MODELS[0], say(TARGET)).embedding
    source = embed(conversion_server, MODELS[0], say(SOURCE)).embedding
    config = conversion_pb2.StreamingConvertConfig(
        model=MODELS[0],
        format=audio_pb2.AudioFormat(encoding=S16, sample_rate_hz=RATE),
        target_embedding=target,
        source_embedding=source,
        options=conversion_pb2.ConversionOptions(tau=0.0),
        output_format=audio_pb2.AudioFormat(encoding=F32),
    )
    *chunks, last = stream_pcm16(conversion_server, samples, config)
    assert last.end_of_stream and last.processed_samples == len(samples)
    offset = 0
    for response in chunks:
        assert response.audio.sample_offset == offset
        offset += response.audio.num_samples
    assert offset == len(samples)
    streamed = np.concatenate([np.frombuffer(r.audio.data, "<f4") for r in chunks])
    # Far from the window joins each window sees the whole receptive field, so it
    # matches the whole-file conversion of the same 16-bit input.
    whole, _ = convert(
        conversion_server,
        model=MODELS[0],
        source=audio_pb2.Audio(
            format=audio_pb2.AudioFormat(encoding=S16, sample_rate_hz=RATE),
            data=(np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(),
        ),
        target_embedding=target,
        source_embedding=source,
    )
    inside = slice(int(0.5 * RATE), int(1.5 * RATE))
    np.testing.assert_allclose(streamed[inside], whole[inside], atol=1e-4)
    assert np.corrcoef(streamed, whole)[0, 1] > 0.9


def test_embedding_checks(conversion_server):
    ge2e = embed(conversion_server, "ge2e-resemblyzer", say(TARGET)).embedding
    with pytest.raises(grpc.RpcError) as raised:
        convert(conversion_server, target_embedding=ge2e)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "target_embedding.model_family" in raised.value.details()
    v1 = embed(conversion_server, MODELS[1], say(TARGET)).embedding
    assert v1.model_family == "openvoice-v1"
    with pytest.raises(grpc.RpcError) as raised:
        convert(conversion_server, model=MODELS[0], target_embedding=v1)
    assert "openvoice-v1" in raised.value.details()
    short = audio_pb2.SpeakerEmbedding(model_family="openvoice-v2", values=[0.1] * 7)
    with pytest.raises(grpc.RpcError) as raised:
        convert(conversion_server, target_embedding=short)
    assert "target_embedding.values" in raised.value.details()
    assert "has 7 values" in raised.value.details()


def test_a_base_speaker_as_the_source_voice(conversion_server):
    """The tiny V2 snapshot ships base speakers `en-default` (all 1.0) and `es` (all 2.0)."""
    stored = audio_pb2.SpeakerEmbedding(model_family="openvoice-v2", values=[1.0] * 8)
    target = embed(conversion_server, MODELS[0], say(TARGET)).embedding
    by_voice, _ = convert(conversion_server, target_embedding=target, source_voice="en-default")
    by_values, _ = convert(conversion_server, target_embedding=target, source_embedding=stored)
    np.testing.assert_array_equal(by_voice, by_values)
    other, _ = convert(conversion_server, target_embedding=target, source_voice="es")
    assert not np.allclose(by_voice, other)
    with pytest.raises(grpc.RpcError) as raised:
        convert(conversion_server, target_embedding=target, source_voice="fr")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "en-default, es" in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        convert(
            conversion_server,
            target_embedding=target,
            source_voice="es",
            source_embedding=stored,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "source_voice" in raised.value.details()


def test_base_speakers_are_listed_as_voices(conversion_server):
    from speechmesh.models.v1 import models_pb2, models_pb2_grpc

    with conversion_server.channel() as channel:
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest())
    voices = {m.id: [v.id for v in m.voices] for m in listed.models}
    assert voices["openvoice-v2-tiny"] == ["en-default", "es"]
    assert voices["openvoice-v1-tiny"] == ["EN/en_default"]
