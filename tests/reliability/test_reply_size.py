"""A Restore whose raw reply could not be sent is refused before any compute, naming the
limit and the streaming RPC, instead of failing "larger than max" after the work."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from support import conversion_config, pcm16, start_server

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

LIMIT = 1024 * 1024
S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE
F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE


@pytest.fixture(scope="module")
def small_message_server(tmp_path_factory):
    """RNNoise (48 kHz) behind a 1 MiB message limit."""
    config = conversion_config(
        [{"id": "rnnoise", "family": "rnnoise"}], limits={"max_message_bytes": LIMIT}
    )
    server = start_server("conversion", config, tmp_path_factory.mktemp("small-messages"))
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
