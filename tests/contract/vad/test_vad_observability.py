"""Prometheus endpoint and trace exporters of a real server process."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

from support import free_port, start_server, vad_config

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc


def test_metrics_endpoint_counts_calls_and_batches(tmp_path):
    port = free_port()
    server = start_server("vad", vad_config(telemetry={"metrics_port": port}), tmp_path)
    try:
        fmt = audio_pb2.AudioFormat(
            encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
        )
        with server.channel() as channel:
            vad_pb2_grpc.VoiceActivityStub(channel).Detect(
                vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=fmt, data=b"\0\0" * 16000)),
                timeout=30,
            )
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        metrics = text.decode()
    finally:
        server.stop()
    assert (
        'speechmesh_requests_total{code="OK",method="/speechmesh.vad.v1.VoiceActivity/Detect"} 1.0'
    ) in metrics
    for name in (
        "speechmesh_request_duration_seconds_bucket",
        "speechmesh_batch_size_count",
        "speechmesh_batch_duration_seconds_count",
        "speechmesh_real_time_factor_count",
        "speechmesh_batch_queue_depth",
    ):
        assert name in metrics


def test_console_tracing_prints_a_span_per_call(tmp_path):
    server = start_server("vad", vad_config(telemetry={"tracing": "console"}), tmp_path)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    try:
        with server.channel() as channel:
            models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest(),
                timeout=10,
                metadata=[("traceparent", f"00-{trace_id}-b7ad6b7169203331-01")],
            )
    finally:
        server.stop()
    output = "".join(server.log)
    assert '"name": "/speechmesh.models.v1.Models/ListModels"' in output
    assert f'"trace_id": "0x{trace_id}"' in output


def test_otlp_tracing_sets_up_an_exporter():
    code = (
        "from opentelemetry import trace\n"
        "from speechmesh.runtime.config import TelemetryConfig\n"
        "from speechmesh.runtime.telemetry import setup_telemetry\n"
        "setup_telemetry(TelemetryConfig(tracing='otlp', otlp_endpoint='127.0.0.1:4317'), 'x')\n"
        "provider = trace.get_tracer_provider()\n"
        "print(type(provider).__name__, provider.resource.attributes['service.name'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["TracerProvider", "x"]
