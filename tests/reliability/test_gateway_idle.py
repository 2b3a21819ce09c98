"""A stream through the gateway whose client never sends its config is ended after
stream_idle_timeout_s, the gateway's own limit, and holds nothing afterwards."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2
from support import gateway_config, start_server, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

pytestmark = pytest.mark.xdist_group("gateway")
FORMAT = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)


def test_a_stream_without_its_config_is_ended_by_the_gateway(vad_server, tmp_path):
    config = gateway_config(
        {"vad": vad_server.address},
        limits={"stream_idle_timeout_s": 0.5, "max_concurrent_streams": 1},
    )
    gateway = start_server("gateway", config, tmp_path)
    never = threading.Event()

    def silent():
        never.wait(30)  # the client opens the stream and says nothing
        yield from ()

    def detect_stream():
        requests = [
            vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=FORMAT)),
            vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=b"\0\0" * 1600)),
        ]
        return list(stub.StreamingDetect(iter(requests), timeout=10))

    try:
        with gateway.channel() as channel:
            stub = vad_pb2_grpc.VoiceActivityStub(channel)
            with pytest.raises(grpc.RpcError) as raised:
                list(stub.StreamingDetect(silent(), timeout=20))
            never.set()
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "no config message for 0.5 s" in raised.value.details()
            assert "stream_idle_timeout_s" in raised.value.details()
            # Its slot (max_concurrent_streams 1) is free again: the next stream is served.
            wait_until(lambda: _served(detect_stream))
        assert gateway.health() == health_pb2.HealthCheckResponse.SERVING
    finally:
        never.set()
        gateway.stop()


def _served(stream) -> bool:
    try:
        return stream()[-1].processed_samples == 1600
    except grpc.RpcError:
        return False
