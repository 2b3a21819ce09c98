"""RunGraph holds the services' limits and never buffers without bound: input audio is
decoded off the event loop under max_audio_seconds (a compressed file that says it is
too long is refused before it is decoded), and a client that reads slowly holds the
run back instead of growing the gateway."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from support import SENTENCES, gateway_config, ogg_opus_silence, start_server

from speechmesh.audio.v1 import audio_pb2
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc

pytestmark = pytest.mark.xdist_group("gateway")
TRANSCRIBE = {
    "steps": [{"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "$audio"}}],
    "outputs": ["stt.transcript"],
}
SPEAK = {
    "steps": [{"id": "tts", "op": "OP_SYNTHESIZE", "inputs": {"text": "$text"}}],
    "outputs": ["tts.audio"],
}
F32_48K = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=48000)
LONG_TEXT = " ".join(f"{s}." for s in SENTENCES) * 24


@pytest.fixture(scope="module")
def gateway(stt_server, tts_server, tmp_path_factory):
    config = gateway_config({"stt": stt_server.address, "tts": tts_server.address})
    config["gateway"]["graphs"] = {"transcribe": TRANSCRIBE, "speak": SPEAK}
    server = start_server("gateway", config, tmp_path_factory.mktemp("gateway-limits"))
    yield server
    server.stop()


def run_graph(gateway, request, timeout=60):
    with gateway.channel() as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        return list(stub.RunGraph(request, timeout=timeout))


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def test_seventy_minutes_of_opus_silence_are_refused_before_decoding(gateway):
    data = ogg_opus_silence(70 * 60)
    assert len(data) < 1_200_000
    audio = audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_OGG_OPUS), data=data
    )
    request = pb.RunGraphRequest(graph_name="transcribe", inputs={"audio": pb.Value(audio=audio)})
    started = time.monotonic()
    error = refused(lambda: run_graph(gateway, request))
    elapsed = time.monotonic() - started
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    # The whole length, which only the container knows before decoding: decoding up to
    # the limit would report 3600.0x s (and hold 700 MB of samples).
    assert "max_audio_seconds is 3600" in error.details()
    assert "needs 420" in error.details(), error.details()
    assert elapsed < 5, elapsed
    # The services refuse it the same way.
    with gateway.channel() as channel:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        error = refused(lambda: stub.Recognize(stt_pb2.RecognizeRequest(audio=audio), timeout=30))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "needs 420" in error.details(), error.details()
    assert gateway.health() == 1


def test_an_hour_of_raw_audio_is_resource_exhausted_not_a_deadline(gateway):
    seconds = 61 * 60
    audio = audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hz=8000),
        data=b"\xff" * (8000 * seconds),
    )
    request = pb.RunGraphRequest(graph_name="transcribe", inputs={"audio": pb.Value(audio=audio)})
    error = refused(lambda: run_graph(gateway, request, timeout=30))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert f"max_audio_seconds is 3600.0 s; the request needs {seconds}" in error.details()


def rss_bytes(server) -> int:
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def speak(text: str) -> pb.RunGraphRequest:
    return pb.RunGraphRequest(
        graph_name="speak", inputs={"text": pb.Value(text=text)}, output_format=F32_48K
    )


def audio_seconds(responses) -> float:
    return sum(
        len(r.output.audio.data) / 4 / 48000
        for r in responses
        if r.WhichOneof("response") == "output" and r.output.HasField("audio")
    )


def test_a_slow_reader_of_the_speak_graph_keeps_the_gateway_small(gateway):
    run_graph(gateway, speak(SENTENCES[0]))  # warm: the gateway's own buffers exist
    started = time.monotonic()
    whole = run_graph(gateway, speak(LONG_TEXT), timeout=300)
    synthesis_s = time.monotonic() - started
    spoken_s = audio_seconds(whole)
    # Unbounded, a stalled client would leave all of it (float32 at 48 kHz) in the gateway.
    assert spoken_s * 48000 * 4 > 30e6, spoken_s
    baseline = rss_bytes(gateway)
    with gateway.channel() as channel:
        call = orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(
            speak(LONG_TEXT), timeout=300
        )
        first = next(call)
        # Long enough for the whole text to be synthesized, had nothing held it back.
        time.sleep(synthesis_s * 1.5 + 2)
        stalled = rss_bytes(gateway)
        rest = [first, *call]
    growth = stalled - baseline
    assert growth < 12e6, f"gateway grew {growth / 1e6:.1f} MB while the client stalled"
    # Nothing was lost: the slow client got all of it, in order. (Piper draws its noise
    # afresh per run, so this run's length is its own, close to the unstalled one's.)
    assert audio_seconds(rest) == pytest.approx(spoken_s, rel=0.02)
    pieces = [r.output.audio for r in rest if r.output.HasField("audio")]
    ends = [p.sample_offset + len(p.data) // 4 for p in pieces]
    assert [p.sample_offset for p in pieces] == [0, *ends[:-1]]
    assert rest[-1].summary.outputs[0].total_samples == ends[-1]


def test_slow_readers_in_parallel_stall_only_themselves(gateway):
    """While one client stalls, another's run goes through at once."""
    stop = threading.Event()

    def stall() -> None:
        with gateway.channel() as channel:
            call = orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(
                speak(LONG_TEXT), timeout=300
            )
            next(call)
            stop.wait(60)
            call.cancel()

    staller = threading.Thread(target=stall)
    staller.start()
    try:
        time.sleep(1)
        quick = run_graph(gateway, speak(SENTENCES[1]), timeout=60)
        assert audio_seconds(quick) > 1
        assert np.isfinite(quick[-1].summary.elapsed_ms)
    finally:
        stop.set()
        staller.join()
