"""Memory-aware admission: each server process holds at most max_held_audio_seconds of
audio over its calls in flight (decoded requests; stream_held_audio_seconds per open
request stream). Past it a call is RESOURCE_EXHAUSTED naming the limit; what a call
held is given back when it ends, and the server stays SERVING."""

from __future__ import annotations

import queue
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import free_port, pcm16, piper_speech, start_server, stt_config, vad_config

from speechmesh.audio.v1 import audio_pb2
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no metric {name}")


def detect(channel, seconds: float) -> vad_pb2.DetectResponse:
    audio = audio_pb2.Audio(format=S16, data=b"\0\0" * int(16000 * seconds))
    return vad_pb2_grpc.VoiceActivityStub(channel).Detect(
        vad_pb2.DetectRequest(audio=audio), timeout=30
    )


class OpenStream:
    """A StreamingDetect held open until `close`."""

    def __init__(self, channel) -> None:
        self.outbox: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.responses: list = []
        self.call = vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(self._requests())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _requests(self):
        yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=S16))
        while (data := self.outbox.get()) is not None:
            yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=data))

    def _read(self) -> None:
        try:
            self.responses = list(self.call)
        except grpc.RpcError as error:
            self.error = error

    def close(self) -> None:
        self.outbox.put(b"\0\0" * 1600)
        self.outbox.put(None)
        self.thread.join(30)


@pytest.fixture(scope="module")
def vad(tmp_path_factory):
    port = free_port()
    limits = {"max_held_audio_seconds": 20, "stream_held_audio_seconds": 2}
    config = vad_config(limits=limits, telemetry={"metrics_port": port})
    server = start_server("vad", config, tmp_path_factory.mktemp("admission-vad"))
    server.metrics_port = port
    yield server
    server.stop()


def test_one_request_past_the_budget_is_refused_naming_it(vad):
    with vad.channel() as channel:
        with pytest.raises(grpc.RpcError) as raised:
            detect(channel, 25)
        assert detect(channel, 19).total_samples == 19 * 16000
    error = raised.value
    assert error.code() == EXHAUSTED, error.details()
    assert "limit max_held_audio_seconds is 20.0 s; the request needs 25.0 s" in error.details()
    assert metric(vad.metrics_port, "speechmesh_held_audio_seconds") == 0


def test_open_streams_hold_their_share_until_they_end(vad):
    with vad.channel() as channel:
        streams = [OpenStream(channel) for _ in range(8)]  # 8 x 2 s = 16 s held
        try:
            for stream in streams:
                stream.outbox.put(b"\0\0" * 1600)
            # Until every stream is admitted and running.
            deadline = 50
            while metric(vad.metrics_port, "speechmesh_held_audio_seconds") < 16 and deadline:
                threading.Event().wait(0.1)
                deadline -= 1
            assert metric(vad.metrics_port, "speechmesh_held_audio_seconds") == 16
            with pytest.raises(grpc.RpcError) as raised:
                detect(channel, 5)  # 16 + 5 > 20
            assert raised.value.code() == EXHAUSTED
            assert "max_held_audio_seconds" in raised.value.details()
            assert "calls in flight hold 16.0 s" in raised.value.details()
            # Two more streams fit (20 s); the next does not.
            extra = [OpenStream(channel) for _ in range(3)]
            for stream in extra:
                stream.close()
            refused = [s for s in extra if s.error is not None]
            assert len(refused) == 1 and refused[0].error.code() == EXHAUSTED, [
                s.error for s in extra
            ]
        finally:
            for stream in streams:
                stream.close()
        assert all(s.error is None and s.responses[-1].end_of_stream for s in streams)
        # Everything was given back: the 5 s request fits again.
        assert detect(channel, 5).total_samples == 5 * 16000
    assert metric(vad.metrics_port, "speechmesh_held_audio_seconds") == 0
    assert metric(vad.metrics_port, "speechmesh_held_audio_peak_seconds") <= 20
    assert vad.health() == 1


def test_a_burst_of_unary_and_streaming_stt_stays_under_the_budget(tmp_path):
    """The burst of 40 unary and 40 streaming calls that took an STT process from 338 MB
    to 1563 MB: with a budget, what it holds never passes the limit, the calls past it
    are refused at once, and the rest are answered."""
    port = free_port()
    limits = {"max_held_audio_seconds": 60, "stream_held_audio_seconds": 1}
    config = stt_config(limits=limits, telemetry={"metrics_port": port})
    server = start_server("stt", config, tmp_path)
    speech, rate = piper_speech()
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate)
    # Quiet noise: the calls hold their audio as speech would, without keeping two
    # cores busy with 80 transcriptions.
    noise = np.random.default_rng(3).standard_normal(rate * 8).astype(np.float32) * 1e-4
    unary = stt_pb2.RecognizeRequest(audio=audio_pb2.Audio(format=fmt, data=pcm16(noise)))
    data = pcm16(noise[: rate * 3])

    def streamed():
        yield stt_pb2.StreamingRecognizeRequest(config=stt_pb2.StreamingRecognizeConfig(format=fmt))
        step = rate // 5 * 2
        for offset in range(0, len(data), step):
            time.sleep(0.05)  # each stream stays open a second or so, as the burst overlaps
            yield stt_pb2.StreamingRecognizeRequest(
                audio=audio_pb2.AudioChunk(data=data[offset : offset + step])
            )

    def call(index: int) -> grpc.StatusCode:
        with server.channel() as channel:
            stub = stt_pb2_grpc.SpeechToTextStub(channel)
            try:
                if index % 2:
                    list(stub.StreamingRecognize(streamed(), timeout=120))
                else:
                    stub.Recognize(unary, timeout=120)
            except grpc.RpcError as error:
                assert error.code() == EXHAUSTED, error.details()
                assert "limit max_held_audio_seconds is 60.0 s" in error.details()
                return error.code()
            return grpc.StatusCode.OK

    try:
        with ThreadPoolExecutor(80) as pool:
            codes = list(pool.map(call, range(80)))
        peak = metric(port, "speechmesh_held_audio_peak_seconds")
        held = metric(port, "speechmesh_held_audio_seconds")
        with server.channel() as channel:
            spoken = stt_pb2.RecognizeRequest(audio=audio_pb2.Audio(format=fmt, data=pcm16(speech)))
            answered = stt_pb2_grpc.SpeechToTextStub(channel).Recognize(spoken, timeout=120)
        assert server.health() == 1
    finally:
        server.stop()
    assert codes.count(grpc.StatusCode.OK) >= 10 and EXHAUSTED in codes, codes
    assert peak <= 60 and held == 0, (peak, held)
    assert "fox" in answered.text.lower()
