"""The TTS service on in-process servers: a cancelled stream stops synthesis at once, and
a model whose files are missing fails clearly while the others serve."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY
from tts_support import tts_config, write_tiny_kittentts

from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime.config import parse_config
from speechmesh.runtime.server import MeshServer
from speechmesh.services.tts.engine import SynthesisJob, SynthesisParams
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("tts")

SENTENCES = 30
LONG_TEXT = " ".join(f"This is sentence number {n} of a long story." for n in range(SENTENCES))


async def started(models: list[dict]) -> MeshServer:
    server = MeshServer("tts", parse_config(tts_config(models)), port=0)
    await server.start()
    await asyncio.wait_for(server.pool.all_loaded.wait(), 60)
    return server


def pieces_synthesized(model: str) -> float:
    return REGISTRY.get_sample_value("speechmesh_batch_size_sum", {"model": model}) or 0.0


async def model_idle(server: MeshServer) -> None:
    """Returns once every piece queued before it has run: a probe piece goes through the
    model's own queue behind them (and is counted too)."""
    (hosted,) = server.pool.models
    await hosted.run(SynthesisJob("Probe.", hosted.engine.prepare(SynthesisParams())))


def producers() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if "in_order.<locals>.produce" in repr(t.get_coro())]


async def test_a_cancelled_stream_stops_synthesizing_at_once():
    model = "piper-cancel"
    server = await started([{"id": model, "family": "piper", "max_batch_size": 1}])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = tts_pb2_grpc.TextToSpeechStub(channel).StreamingSynthesize(
                tts_pb2.StreamingSynthesizeRequest(text=LONG_TEXT)
            )
            first = await call.read()
            assert first.chunk.span.index == 0
            assert len(producers()) == 1
            done_before = pieces_synthesized(model)
            call.cancel()
            for _ in range(200):
                if server.drain.in_flight == 0 and not producers():
                    break
                await asyncio.sleep(0.01)
            assert server.drain.in_flight == 0
            assert producers() == [], "synthesis goes on after the client left"
            # Only the piece the model was running when the call ended may still finish
            # (it is counted when it does); nothing queued or later is synthesized.
            await model_idle(server)
            stopped_at = pieces_synthesized(model) - 1  # less the probe
            assert stopped_at - done_before <= 1
            assert stopped_at < SENTENCES
            await asyncio.sleep(1.0)
            assert pieces_synthesized(model) == stopped_at + 1
        method = "/speechmesh.tts.v1.TextToSpeech/StreamingSynthesize"
        cancelled = REGISTRY.get_sample_value(
            "speechmesh_requests_total", {"method": method, "code": "CANCELLED"}
        )
        assert cancelled >= 1
    finally:
        await server.drain_and_stop()


async def test_a_model_with_missing_files_fails_clearly_and_the_others_serve(tmp_path):
    folder = write_tiny_kittentts(tmp_path / "kitten")
    (folder / "voices.npz").unlink()
    server = await started(
        [
            {"id": "piper-ok", "family": "piper", "max_batch_size": 1},
            {"id": "kitten-broken", "family": "kittentts", "source": str(folder)},
        ]
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            listed = await models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest()
            )
            states = {m.id: (m.state, m.state_message) for m in listed.models}
            assert states["piper-ok"][0] == models_pb2.MODEL_STATE_READY
            assert states["kitten-broken"][0] == models_pb2.MODEL_STATE_FAILED
            assert "lacks voices.npz" in states["kitten-broken"][1]
            stub = tts_pb2_grpc.TextToSpeechStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Synthesize(tts_pb2.SynthesizeRequest(model="kitten-broken", text="Hi."))
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "voices.npz" in raised.value.details()
            reply = await stub.Synthesize(tts_pb2.SynthesizeRequest(model="piper-ok", text="Hi."))
            assert reply.summary.total_samples > 0
    finally:
        await server.drain_and_stop()


async def test_parallel_batches_synthesize_concurrent_texts_as_each_alone():
    """Piper with two batches at once (one thread each): each of concurrent requests gets
    exactly the audio it gets alone."""
    model = "piper-parallel"
    server = await started(
        [{"id": model, "family": "piper", "max_batch_size": 1, "threads": 1, "parallel_batches": 2}]
    )
    quiet = tts_pb2.SynthesisOptions(piper=tts_pb2.PiperOptions(noise_scale=0, noise_w=0))
    texts = [f"Request number {n} asks for its own sentence." for n in range(4)]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = tts_pb2_grpc.TextToSpeechStub(channel)

            async def say(text: str) -> bytes:
                request = tts_pb2.SynthesizeRequest(text=text, options=quiet, model=model)
                return (await stub.Synthesize(request, timeout=60)).audio.data

            alone = [await say(text) for text in texts]
            together = await asyncio.gather(*(say(text) for text in texts))
    finally:
        await server.drain_and_stop()
    assert all(alone) and together == alone
