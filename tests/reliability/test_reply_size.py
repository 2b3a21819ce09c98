"""A reply too large to send is RESOURCE_EXHAUSTED naming the limit, never grpc's bare
"larger than max": refused before any compute where its size follows from the request
(Restore, Convert: the output lasts as long as the input), and checked by the runtime
for every other reply (a long Synthesize)."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from checkpoints import save_openvoice
from support import conversion_config, pcm16, start_server
from tts_support import tts_config

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

LIMIT = 1024 * 1024
S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE
F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE


@pytest.fixture(scope="module")
def small_message_server(tmp_path_factory):
    """RNNoise (48 kHz) and a tiny OpenVoice converter (16 kHz) behind a 1 MiB limit."""
    root = tmp_path_factory.mktemp("small-messages")
    save_openvoice(root / "openvoice", "v2")
    models = [
        {"id": "rnnoise", "family": "rnnoise"},
        {"id": "openvoice-tiny", "family": "openvoice-v2", "source": str(root / "openvoice")},
    ]
    config = conversion_config(models, limits={"max_message_bytes": LIMIT})
    server = start_server("conversion", config, root)
    yield server
    server.stop()


def restore(server, output_encoding, seconds=6.0):
    noise = np.random.default_rng(1).standard_normal(int(16000 * seconds)) * 0.05
    request = conversion_pb2.RestoreRequest(
        audio=audio_pb2.Audio(
            format=audio_pb2.AudioFormat(encoding=S16, sample_rate_hz=16000),
            data=pcm16(noise.astype(np.float32)),
        ),
        output_format=audio_pb2.AudioFormat(encoding=output_encoding),
    )
    with server.channel() as channel:
        return conversion_pb2_grpc.AudioRestorationStub(channel).Restore(request, timeout=60)


def test_a_reply_over_the_message_limit_is_refused_at_once(small_message_server):
    # 6 s at 48 kHz as float32 is 1.15 MB, over the 1 MiB limit.
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        restore(small_message_server, F32)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert f"limit max_message_bytes is {LIMIT} bytes" in error.details()
    assert "StreamingRestore" in error.details()
    assert time.monotonic() - started < 5
    # The same audio as 16-bit PCM (576 kB) fits and is restored.
    reply = restore(small_message_server, S16)
    assert reply.total_samples == 6 * 48000
    assert len(reply.audio.data) == 2 * reply.total_samples


def noise_audio(seconds: float) -> audio_pb2.Audio:
    noise = np.random.default_rng(2).standard_normal(int(16000 * seconds)) * 0.05
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=S16, sample_rate_hz=16000),
        data=pcm16(noise.astype(np.float32)),
    )


def test_a_conversion_over_the_message_limit_is_refused_at_once(small_message_server):
    # 20 s at 16 kHz as float32 is 1.28 MB, over the 1 MiB limit.
    voice = audio_pb2.SpeakerEmbedding(model_family="openvoice-v2", values=[0.1] * 8)
    request = conversion_pb2.ConvertRequest(
        model="openvoice-tiny",
        source=noise_audio(20.0),
        target_embedding=voice,
        source_embedding=voice,
        output_format=audio_pb2.AudioFormat(encoding=F32),
    )
    started = time.monotonic()
    with small_message_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        conversion_pb2_grpc.VoiceConversionStub(channel).Convert(request, timeout=60)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert f"limit max_message_bytes is {LIMIT} bytes" in error.details()
    assert "StreamingConvert" in error.details()
    assert time.monotonic() - started < 5
    # As 16-bit PCM (640 kB) the same request fits.
    request.output_format.encoding = S16
    with small_message_server.channel() as channel:
        reply = conversion_pb2_grpc.VoiceConversionStub(channel).Convert(request, timeout=120)
    assert reply.total_samples == 20 * 16000


@pytest.fixture(scope="module")
def small_message_tts(tmp_path_factory):
    config = tts_config(limits={"max_message_bytes": 256 * 1024})
    server = start_server("tts", config, tmp_path_factory.mktemp("small-tts"))
    yield server
    server.stop()


def test_a_synthesis_too_large_to_send_names_the_limit(small_message_tts):
    # About 8 s of 22.05 kHz float32 speech: some 700 kB, over the 256 KiB limit.
    text = "The quick brown fox jumps over the lazy dog near the river bank. " * 2
    request = tts_pb2.SynthesizeRequest(
        text=text, output_format=audio_pb2.AudioFormat(encoding=F32)
    )
    with small_message_tts.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=120)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert "limit max_message_bytes is 262144 bytes" in error.details()
    assert "streaming RPC" in error.details()
    # The server is still healthy and answers a short request.
    request.text = "Hello."
    with small_message_tts.channel() as channel:
        reply = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=120)
    assert len(reply.audio.data) > 0
