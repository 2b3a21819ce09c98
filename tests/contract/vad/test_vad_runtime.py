"""Runtime behaviour on an in-process VAD server: tracing, metrics, limits, cancellation."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from support import vad_config

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime.config import parse_config
from speechmesh.runtime.server import MeshServer
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

EXPORTER = InMemorySpanExporter()
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)


@pytest.fixture(scope="module", autouse=True)
def tracer_provider():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


async def started(**overrides) -> MeshServer:
    server = MeshServer("vad", parse_config(vad_config(**overrides)), port=0)
    await server.start()
    await asyncio.wait_for(server.pool.all_loaded.wait(), 30)
    return server


async def test_trace_context_and_request_id_cross_the_call():
    server = await started()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            metadata = (
                ("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01"),
                ("x-request-id", "req-42"),
            )
            call = models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest(request_id="ignored"), metadata=metadata
            )
            response = await call
            trailing = dict(await call.trailing_metadata())
        assert response.request_id == "req-42"
        assert trailing.get("x-request-id") == "req-42"
        spans = [s for s in EXPORTER.get_finished_spans() if s.name.endswith("/ListModels")]
        assert spans, "no server span recorded"
        span = spans[-1]
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert span.kind is trace.SpanKind.SERVER
        assert span.attributes["speechmesh.request_id"] == "req-42"
    finally:
        await server.drain_and_stop()


async def test_metrics_count_requests_by_status_and_batches():
    method = "/speechmesh.vad.v1.VoiceActivity/Detect"

    def count(code: str) -> float:
        return (
            REGISTRY.get_sample_value("speechmesh_requests_total", {"method": method, "code": code})
            or 0.0
        )

    ok_before, bad_before = count("OK"), count("INVALID_ARGUMENT")
    batches_before = (
        REGISTRY.get_sample_value("speechmesh_batch_size_count", {"model": "silero-vad"}) or 0.0
    )
    server = await started()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = vad_pb2_grpc.VoiceActivityStub(channel)
            await stub.Detect(
                vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=S16, data=b"\0\0" * 16000))
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Detect(
                    vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=S16, data=b""))
                )
    finally:
        await server.drain_and_stop()
    assert count("OK") == ok_before + 1
    assert count("INVALID_ARGUMENT") == bad_before + 1
    batches = REGISTRY.get_sample_value("speechmesh_batch_size_count", {"model": "silero-vad"})
    assert batches > batches_before


async def test_concurrent_stream_limit_is_named_and_frees_up():
    server = await started(limits={"max_concurrent_streams": 2})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = vad_pb2_grpc.VoiceActivityStub(channel)
            config = vad_pb2.StreamingDetectRequest(
                config=vad_pb2.StreamingDetectConfig(format=S16)
            )
            open_calls = [stub.StreamingDetect() for _ in range(2)]
            for call in open_calls:
                await call.write(config)
            await asyncio.sleep(0.2)
            # Refused as the call starts, before any message: a write could race the
            # refusal and fail on the client's side instead.
            third = stub.StreamingDetect()
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await third.read()
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_concurrent_streams" in raised.value.details()
            for call in open_calls:
                await call.done_writing()
                responses = [r async for r in call]
                assert responses[-1].end_of_stream
            again = stub.StreamingDetect()
            await again.write(config)
            await again.done_writing()
            assert [r async for r in again][-1].end_of_stream
    finally:
        await server.drain_and_stop()


async def test_concurrent_requests_share_model_calls():
    def observed() -> tuple[float, float]:
        labels = {"model": "silero-vad"}
        return (
            REGISTRY.get_sample_value("speechmesh_batch_size_sum", labels) or 0.0,
            REGISTRY.get_sample_value("speechmesh_batch_size_count", labels) or 0.0,
        )

    server = await started()
    try:
        items_before, batches_before = observed()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = vad_pb2_grpc.VoiceActivityStub(channel)
            request = vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=S16, data=b"\1\0" * 32000))
            await asyncio.gather(*(stub.Detect(request) for _ in range(32)))
        items, batches = observed()
        # Each request: 62 whole windows in jobs of at most 32 (2 jobs), then the padded
        # tail (1 job). 96 jobs in all, run in fewer model calls than jobs.
        assert items - items_before == 96
        assert batches - batches_before < 96
    finally:
        await server.drain_and_stop()


async def test_stream_audio_limit_is_named():
    server = await started(limits={"max_stream_seconds": 1.0})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect()
            await call.write(
                vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=S16))
            )
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                for _ in range(30):  # 3 s of audio, 100 ms at a time
                    await call.write(
                        vad_pb2.StreamingDetectRequest(
                            audio=audio_pb2.AudioChunk(data=b"\0\0" * 1600)
                        )
                    )
                await call.done_writing()
                async for _ in call:
                    pass
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_stream_seconds" in raised.value.details()
    finally:
        await server.drain_and_stop()


async def test_a_quiet_stream_is_ended_with_deadline_exceeded():
    server = await started(limits={"stream_idle_timeout_s": 0.3})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect()
            await call.write(
                vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=S16))
            )
            await call.write(
                vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=b"\0\0" * 1600))
            )
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call.read()
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "stream_idle_timeout_s" in raised.value.details()
        assert server.drain.in_flight == 0
    finally:
        await server.drain_and_stop()


async def test_a_cancelled_stream_frees_its_slot_at_once():
    server = await started()
    method = "/speechmesh.vad.v1.VoiceActivity/StreamingDetect"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect()
            await call.write(
                vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=S16))
            )
            for _ in range(5):
                await call.write(
                    vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=b"\1\0" * 1600))
                )
            await asyncio.sleep(0.1)
            assert server.drain.in_flight == 1
            assert REGISTRY.get_sample_value("speechmesh_active_streams", {"method": method}) == 1
            call.cancel()
            for _ in range(50):
                if server.drain.in_flight == 0:
                    break
                await asyncio.sleep(0.01)
        assert server.drain.in_flight == 0
        assert REGISTRY.get_sample_value("speechmesh_active_streams", {"method": method}) == 0
        assert (
            REGISTRY.get_sample_value(
                "speechmesh_requests_total", {"method": method, "code": "CANCELLED"}
            )
            >= 1
        )
    finally:
        await server.drain_and_stop()
