"""Replicas die and come back; deadlines run out: the gateway keeps serving what it can."""

from __future__ import annotations

import queue
import signal
import threading
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families
from support import (
    free_port,
    gateway_config,
    speech_in_silence,
    start_server,
    vad_config,
    wait_until,
)

from speechmesh.audio.v1 import audio_pb2
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
SILENCE = b"\0\0" * 1600


def detect(server):
    with server.channel() as channel:
        return vad_pb2_grpc.VoiceActivityStub(channel).Detect(
            vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=S16, data=SILENCE)), timeout=10
        )


class Stream:
    """A StreamingDetect call fed from a queue, read in a thread."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.outbox: queue.Queue = queue.Queue()
        self.responses: list = []
        self.error: grpc.RpcError | None = None
        call = vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(self._requests())
        self.thread = threading.Thread(target=self._read, args=(call,), daemon=True)
        self.thread.start()

    def _requests(self):
        yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=S16))
        while (data := self.outbox.get()) is not None:
            yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=data))

    def _read(self, call) -> None:
        try:
            self.responses = list(call)
        except grpc.RpcError as error:
            self.error = error

    def send(self, data: bytes) -> None:
        self.outbox.put(data)

    def finish(self) -> None:
        self.outbox.put(None)
        self.thread.join(30)


def test_a_killed_replica_fails_only_its_streams(tmp_path):
    replicas = [start_server("vad", vad_config(), tmp_path) for _ in range(2)]
    gateway = start_server(
        "gateway",
        gateway_config({"vad-a": replicas[0].address, "vad-b": replicas[1].address}),
        tmp_path,
    )
    try:
        # Both replicas were up before the gateway started, so the refresh that makes
        # the first call succeed has found both.
        wait_until(lambda: _detects(gateway))
        channel = gateway.channel()
        streams = [Stream(channel) for _ in range(4)]
        for stream in streams:
            stream.send(SILENCE)
        time.sleep(0.5)
        replicas[0].process.send_signal(signal.SIGKILL)
        replicas[0].process.wait(10)
        for stream in streams:
            stream.send(SILENCE)
            stream.finish()
        failed = [s for s in streams if s.error is not None]
        survived = [s for s in streams if s.error is None]
        assert len(failed) == 2 and len(survived) == 2, [s.error for s in streams]
        assert all(s.error.code() == grpc.StatusCode.UNAVAILABLE for s in failed)
        assert all(s.responses[-1].end_of_stream for s in survived)
        assert all(s.responses[-1].processed_samples == 3200 for s in survived)
        # New calls go to the survivor; the gateway stays SERVING.
        for _ in range(6):
            assert detect(gateway).total_samples == 1600
        assert gateway.health() == health_pb2.HealthCheckResponse.SERVING
        channel.close()
    finally:
        gateway.stop()
        for replica in replicas:
            replica.stop()


def test_a_backend_down_at_start_is_named_then_served_when_it_comes_up(tmp_path):
    port = free_port()
    gateway = start_server(
        "gateway", gateway_config({"vad": f"127.0.0.1:{port}"}), tmp_path, wait_serving=False
    )
    backend = None
    try:
        time.sleep(1.0)
        with pytest.raises(grpc.RpcError) as raised:
            detect(gateway)
        assert raised.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)
        assert f"127.0.0.1:{port}" in raised.value.details()
        assert gateway.health() == health_pb2.HealthCheckResponse.NOT_SERVING
        backend = start_server("vad", vad_config(), tmp_path, port=port)
        wait_until(lambda: _detects(gateway), timeout_s=30)
        wait_until(lambda: gateway.health() == health_pb2.HealthCheckResponse.SERVING, 5)
    finally:
        gateway.stop()
        if backend is not None:
            backend.stop()


def _detects(gateway) -> bool:
    try:
        return detect(gateway).total_samples == 1600
    except grpc.RpcError:
        return False


def test_a_client_deadline_cancels_the_backend_call(tmp_path):
    metrics_port = free_port()
    backend = start_server("vad", vad_config(telemetry={"metrics_port": metrics_port}), tmp_path)
    gateway = start_server("gateway", gateway_config({"vad": backend.address}), tmp_path)
    method = "/speechmesh.vad.v1.VoiceActivity/StreamingDetect"
    try:
        wait_until(lambda: _detects(gateway))
        clip = speech_in_silence([0.5, 0.5], rate=16000)

        def slow():
            yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=S16))
            for _ in range(40):  # 4 s of audio at real time: longer than the deadline
                yield vad_pb2.StreamingDetectRequest(
                    audio=audio_pb2.AudioChunk(data=clip.pcm16()[:3200])
                )
                time.sleep(0.1)

        with gateway.channel() as channel, pytest.raises(grpc.RpcError) as raised:
            list(vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(slow(), timeout=1.0))
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def backend_calls() -> dict[str, float]:
            """The backend's finished StreamingDetect calls by status, and its open streams."""
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
            seen: dict[str, float] = {}
            for family in text_string_to_metric_families(text.read().decode()):
                for sample in family.samples:
                    if sample.labels.get("method") != method:
                        continue
                    if sample.name == "speechmesh_requests_total":
                        seen[sample.labels["code"]] = sample.value
                    elif sample.name == "speechmesh_active_streams":
                        seen["active"] = sample.value
            return seen

        def backend_saw_it() -> bool:
            seen = backend_calls()
            ended = seen.get("CANCELLED", 0) + seen.get("DEADLINE_EXCEEDED", 0)
            return ended >= 1 and seen.get("active") == 0

        try:
            wait_until(backend_saw_it, timeout_s=20)
        except AssertionError:
            raise AssertionError(f"backend metrics: {backend_calls()}") from None
    finally:
        gateway.stop()
        backend.stop()
