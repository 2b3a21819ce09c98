"""Server lifecycle over real gRPC: warm-up gating, reflection, auth, drain on SIGTERM."""

from __future__ import annotations

import hashlib
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from support import start_server, vad_config

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime import registry
from speechmesh.runtime.config import parse_config
from speechmesh.runtime.server import MeshServer
from speechmesh.services.vad.silero import SileroVad
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
WARMUP_GATE = threading.Event()


class GatedSileroVad(SileroVad):
    """The real Silero engine whose warm-up waits for the test to open a gate."""

    family = "gated-silero-vad"

    def warmup(self) -> None:
        assert WARMUP_GATE.wait(30)
        super().warmup()
        self.warmed_up = True


async def test_health_turns_serving_only_after_warmup(monkeypatch):
    monkeypatch.setitem(
        registry.FAMILIES, "gated-silero-vad", registry.Family(f"{__name__}:GatedSileroVad", "vad")
    )
    config = parse_config(
        vad_config(
            services={"vad": {"port": 0, "models": [{"id": "gated", "family": "gated-silero-vad"}]}}
        )
    )
    server = MeshServer("vad", config, port=0)
    WARMUP_GATE.clear()
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service="model/gated"))
            assert (await watch.read()).status == NOT_SERVING
            for name in ("", "speechmesh.vad.v1.VoiceActivity"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
                assert reply.status == NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await vad_pb2_grpc.VoiceActivityStub(channel).Detect(
                    vad_pb2.DetectRequest(
                        audio=audio_pb2.Audio(
                            format=audio_pb2.AudioFormat(
                                encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
                            ),
                            data=b"\0\0" * 1600,
                        )
                    )
                )
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "loading" in raised.value.details()
            listed = await models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest()
            )
            assert listed.models[0].state == models_pb2.MODEL_STATE_LOADING

            WARMUP_GATE.set()
            assert (await watch.read()).status == SERVING
            engine = server.pool.models[0].engine
            assert engine.warmed_up
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
            assert reply.status == SERVING
            watch.cancel()
    finally:
        WARMUP_GATE.set()
        await server.drain_and_stop()


def test_reflection_lists_the_services(vad_server):
    with vad_server.channel() as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {
        "speechmesh.vad.v1.VoiceActivity",
        "speechmesh.models.v1.Models",
        "grpc.health.v1.Health",
    } <= services


def test_list_models_reports_the_embedded_model(vad_server):
    with vad_server.channel() as channel:
        response = models_pb2_grpc.ModelsStub(channel).ListModels(
            models_pb2.ListModelsRequest(request_id="abc"), timeout=10
        )
    assert response.request_id == "abc"
    (model,) = response.models
    assert (model.id, model.family, model.state) == (
        "silero-vad",
        "silero-vad",
        models_pb2.MODEL_STATE_READY,
    )
    assert model.native_sample_rate_hz == 16000
    assert list(model.tasks) == [models_pb2.TASK_VOICE_ACTIVITY_DETECTION]


def test_auth_rejects_missing_and_wrong_keys_and_accepts_the_right_one(tmp_path):
    key = "s3cret-key"
    digest = hashlib.sha256(key.encode()).hexdigest()
    server = start_server(
        "vad",
        vad_config(auth={"enabled": True}),
        tmp_path,
        env={"SPEECHMESH_API_KEYS": f"sha256:{digest}"},
    )
    request = models_pb2.ListModelsRequest()
    try:
        with server.channel() as channel:
            stub = models_pb2_grpc.ModelsStub(channel)
            for metadata in ([], [("authorization", "Bearer wrong")], [("authorization", key)]):
                with pytest.raises(grpc.RpcError) as raised:
                    stub.ListModels(request, metadata=metadata, timeout=10)
                assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            reply = stub.ListModels(
                request, metadata=[("authorization", f"Bearer {key}")], timeout=10
            )
            assert reply.models[0].id == "silero-vad"
            # Probes carry no keys: health stays open.
            assert server.health() == SERVING
    finally:
        server.stop()


def test_auth_enabled_without_keys_refuses_to_start(tmp_path):
    from support import start_server as start

    with pytest.raises(RuntimeError, match="no API key"):
        start(
            "vad",
            vad_config(auth={"enabled": True, "keys_env": "SPEECHMESH_TEST_NO_KEYS"}),
            tmp_path,
        )


def test_sigterm_during_a_stream_lets_it_finish(tmp_path):
    server = start_server("vad", vad_config(drain_grace_s=20), tmp_path)
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
    chunk = (np.sin(np.arange(1600) / 5) * 8000).astype("<i2").tobytes()  # 100 ms
    sent = threading.Event()

    def requests():
        yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=fmt))
        for index in range(30):
            if index == 5:
                sent.set()
            yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=chunk))
            time.sleep(0.05)

    try:
        with server.channel() as channel:
            call = vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(requests(), timeout=60)
            assert sent.wait(20)
            server.process.send_signal(__import__("signal").SIGTERM)
            time.sleep(0.3)
            # Draining: health says NOT_SERVING and new calls are turned away.
            assert server.health() == NOT_SERVING
            with pytest.raises(grpc.RpcError) as raised:
                models_pb2_grpc.ModelsStub(channel).ListModels(
                    models_pb2.ListModelsRequest(), timeout=10
                )
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            responses = list(call)
        assert responses[-1].end_of_stream
        assert responses[-1].processed_samples == 30 * 1600
        assert server.process.wait(30) == 0
    finally:
        server.stop()


def test_missing_weights_fail_the_model_with_failed_precondition(tmp_path):
    config = vad_config(
        services={
            "vad": {
                "port": 0,
                "models": [
                    {
                        "id": "hub-vad",
                        "family": "silero-vad",
                        "source": "speechmesh-test/missing-vad",
                    }
                ],
            }
        }
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    server = start_server("vad", config, tmp_path, env=env, wait_serving=False)
    try:
        with server.channel() as channel:
            models = models_pb2_grpc.ModelsStub(channel)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                (model,) = models.ListModels(models_pb2.ListModelsRequest(), timeout=10).models
                if model.state != models_pb2.MODEL_STATE_LOADING:
                    break
                time.sleep(0.1)
            assert model.state == models_pb2.MODEL_STATE_FAILED
            assert "speechmesh-test/missing-vad" in model.state_message
            with pytest.raises(grpc.RpcError) as raised:
                vad_pb2_grpc.VoiceActivityStub(channel).Detect(
                    vad_pb2.DetectRequest(
                        audio=audio_pb2.Audio(
                            format=audio_pb2.AudioFormat(
                                encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
                            ),
                            data=b"\0\0" * 1600,
                        )
                    ),
                    timeout=10,
                )
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "missing-vad" in raised.value.details()
        assert server.health("model/hub-vad") == NOT_SERVING
        assert server.health() == NOT_SERVING
    finally:
        server.stop()
