"""SpeakerEncoder/Embed with the real GE2E weights: it tells two real voices apart."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from support import piper_untrimmed
from voices import espeak_say, wav_bytes

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

pytestmark = pytest.mark.xdist_group("conversion")
WAV = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV)
SENTENCES = (
    "The quick brown fox jumps over the lazy dog",
    "She sells sea shells by the sea shore every summer morning",
)


def clip(audio: np.ndarray, rate: int) -> audio_pb2.Audio:
    return audio_pb2.Audio(format=WAV, data=wav_bytes(audio, rate))


def embed(server, *clips: audio_pb2.Audio, model: str = "") -> conversion_pb2.EmbedResponse:
    with server.channel() as channel:
        stub = conversion_pb2_grpc.SpeakerEncoderStub(channel)
        return stub.Embed(conversion_pb2.EmbedRequest(model=model, clips=clips), timeout=120)


def vector(response: conversion_pb2.EmbedResponse) -> np.ndarray:
    return np.asarray(response.embedding.values, dtype=np.float32)


def test_same_speaker_scores_higher_than_another_speaker(conversion_server):
    joe = [vector(embed(conversion_server, clip(*piper_untrimmed(s)))) for s in SENTENCES]
    espeak = [vector(embed(conversion_server, clip(*espeak_say(s)))) for s in SENTENCES]
    same = [float(joe[0] @ joe[1]), float(espeak[0] @ espeak[1])]
    # Different sentences on both sides, so the text cannot explain the difference.
    different = [float(joe[0] @ espeak[1]), float(joe[1] @ espeak[0])]
    assert min(same) > max(different) + 0.15, (same, different)


def test_the_embedding_is_tagged_and_unit_length(conversion_server):
    response = embed(conversion_server, clip(*piper_untrimmed(SENTENCES[0])))
    assert response.model == "ge2e-resemblyzer"
    assert response.embedding.model_family == "ge2e-resemblyzer"
    assert response.embedding.model == "ge2e-resemblyzer"
    values = vector(response)
    assert values.shape == (256,) and abs(np.linalg.norm(values) - 1) < 1e-4
    assert (values >= 0).all()  # after the ReLU
    audio, rate = piper_untrimmed(SENTENCES[0])
    assert abs(response.audio_duration_ms - len(audio) / rate * 1000) < 1
    # Same input, same embedding; another rate of the same audio, nearly the same.
    np.testing.assert_array_equal(values, vector(embed(conversion_server, clip(audio, rate))))
    import soxr

    resampled = soxr.resample(audio, rate, 16000).astype(np.float32)
    assert float(values @ vector(embed(conversion_server, clip(resampled, 16000)))) > 0.98


def test_several_clips_pool_their_windows(conversion_server):
    clips = [clip(*piper_untrimmed(s)) for s in SENTENCES]
    both = vector(embed(conversion_server, *clips))
    singles = [vector(embed(conversion_server, c)) for c in clips]
    # The pooled embedding sits between the single ones.
    assert all(float(both @ s) > float(singles[0] @ singles[1]) for s in singles)


def test_too_little_speech_names_the_minimum(conversion_server):
    audio, rate = piper_untrimmed(SENTENCES[0])
    with pytest.raises(grpc.RpcError) as raised:
        embed(conversion_server, clip(audio[: rate // 3], rate))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at least 1.20 s" in raised.value.details()
