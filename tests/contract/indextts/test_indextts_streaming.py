"""IndexTTS streaming safety on a tiny random checkpoint: a seed repeats a chunked stream
exactly, streams are admitted through the model's batcher (queue limit → RESOURCE_EXHAUSTED),
and a stream whose caller goes away stops its GPT and S2MEL work within one chunk."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from indextts_checkpoint import write_checkpoint
from support import RunningServer, start_server

from speechmesh.audio.v1 import audio_pb2
from speechmesh.indextts.v1 import indextts_pb2, indextts_pb2_grpc
from speechmesh.services.indextts.engine import SynthesisJob
from speechmesh.services.indextts.layout import locate
from speechmesh.services.indextts.pipeline import IndexTTS2
from speechmesh.services.indextts.sampling import SamplingSettings

pytestmark = pytest.mark.xdist_group("indextts-server")
MODEL = "indextts-stream"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("indextts-stream-ckpt") / "IndexTTS-2"
    write_checkpoint(folder, runs_to_limit=True)
    return folder


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    model = {
        "id": MODEL,
        "family": "indextts2",
        "source": str(checkpoint),
        "threads": 1,
        "max_batch_size": 1,
        "max_queue_size": 1,
    }
    config = {"services": {"indextts": {"port": 0, "models": [model]}}, "drain_grace_s": 5}
    running = start_server("indextts", config, tmp_path_factory.mktemp("indextts-stream-srv"))
    yield running
    running.stop()


def _prompt() -> audio_pb2.Audio:
    t = np.arange(16000) / 16000
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 530 * t)).astype(
        np.float32
    )
    fmt = audio_pb2.AudioFormat(
        encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=16000, channels=1
    )
    return audio_pb2.Audio(format=fmt, data=voice.tobytes())


def _request(max_codes: int, steps: int, seed: int = 5) -> indextts_pb2.StreamingSynthesizeRequest:
    return indextts_pb2.StreamingSynthesizeRequest(
        model=MODEL,
        text="Hello world. How are you today?",
        speaker_prompt=_prompt(),
        options=indextts_pb2.SynthesisOptions(
            # Sampled (top_k 30, temperature, top_p) with no stop in sight: every draw counts.
            sampling=indextts_pb2.SamplingOptions(
                num_beams=1, max_mel_tokens=max_codes, repetition_penalty=1.0
            ),
            diffusion_steps=steps,
            seed=seed,
        ),
        chunk_mel_tokens=3,
    )


def _audio(stub, request) -> bytes:  # type: ignore[no-untyped-def]
    replies = list(stub.StreamingSynthesize(request, timeout=120))
    assert replies[-1].WhichOneof("response") == "summary"
    return b"".join(r.chunk.audio.data for r in replies[:-1])


def test_a_seed_repeats_a_chunked_stream_exactly(server: RunningServer):
    with server.channel() as channel:
        stub = indextts_pb2_grpc.IndexTTSStub(channel)
        outputs = {_audio(stub, _request(max_codes=12, steps=2)) for _ in range(10)}
        other = _audio(stub, _request(max_codes=12, steps=2, seed=6))
    assert len(outputs) == 1
    (audio,) = outputs
    assert len(audio) > 0 and audio != other


def test_streams_queue_through_the_batcher_and_are_refused_past_its_limit(server):
    slow = _request(max_codes=40, steps=60)
    with server.channel() as channel:
        stub = indextts_pb2_grpc.IndexTTSStub(channel)
        running = stub.StreamingSynthesize(slow, timeout=120)
        first = next(running)  # the batcher's thread is busy with this stream
        assert first.WhichOneof("response") == "chunk"
        queued = stub.StreamingSynthesize(slow, timeout=120)
        time.sleep(0.5)  # the second waits in the queue (max_queue_size 1) …
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.StreamingSynthesize(slow, timeout=120))  # … so a third is refused
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_queue_size" in refused.value.details()
        running.cancel()
        queued.cancel()
        # Both cancelled streams stop within a chunk: the queue frees up promptly (the
        # queued one leaves it when the batcher next looks) and a new request is served.
        started = time.perf_counter()
        while True:
            try:
                audio = _audio(stub, _request(max_codes=6, steps=2))
                break
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                assert time.perf_counter() - started < 10, "cancelled streams kept the model"
                time.sleep(0.05)
    assert audio and time.perf_counter() - started < 30


def test_a_cancelled_stream_stops_gpt_and_s2mel_within_one_chunk(checkpoint):
    from speechmesh.services.indextts.engine import IndexTTSEngine

    tts = IndexTTS2(locate(checkpoint))
    engine = IndexTTSEngine.__new__(IndexTTSEngine)
    engine.pipeline, engine._lock = tts, threading.Lock()
    counts = {"tokens": 0, "flows": 0}
    head, flow = tts.gpt.mel_head.forward, tts.s2mel.cfm.inference

    def counted_head(x):  # type: ignore[no-untyped-def]
        counts["tokens"] += 1
        time.sleep(0.05)  # a token takes a while, as on a real model
        return head(x)

    def counted_flow(*a, **k):  # type: ignore[no-untyped-def]
        counts["flows"] += 1
        return flow(*a, **k)

    tts.gpt.mel_head.forward = counted_head
    tts.s2mel.cfm.inference = counted_flow
    t = np.arange(16000) / 16000
    job = SynthesisJob(
        text="Hello world, this is a small test of the speech system.",
        prompt_audio=(0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32),
        prompt_rate=16000,
        sampling=SamplingSettings(num_beams=1, repetition_penalty=1.0, max_mel_tokens=60),
        diffusion_steps=2,
        seed=3,
        chunk_codes=3,
    )
    pieces = engine.stream(job)
    first = next(pieces)
    assert first.samples.size > 0
    job.cancelled.set()
    at_cancel = dict(counts)
    rest = list(pieces)
    assert rest == []
    time.sleep(0.1)
    # GPT: at most the token in flight; S2MEL: at most the chunk in flight.
    assert counts["tokens"] - at_cancel["tokens"] <= 1
    assert counts["flows"] - at_cancel["flows"] <= 1
    assert at_cancel["tokens"] < 60  # it was stopped, not finished
