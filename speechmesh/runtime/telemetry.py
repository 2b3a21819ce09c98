"""Prometheus metrics and OpenTelemetry tracing shared by every server of the mesh."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from speechmesh.runtime.config import TelemetryConfig

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "speechmesh_requests_total", "RPCs finished, by method and status code", ["method", "code"]
)
LATENCY = Histogram(
    "speechmesh_request_duration_seconds",
    "Wall time of an RPC from first byte to status",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
ACTIVE_STREAMS = Gauge("speechmesh_active_streams", "Streaming RPCs in progress", ["method"])
HELD_AUDIO = Gauge(
    "speechmesh_held_audio_seconds",
    "Audio held by the calls in flight (decoded requests, open request streams)",
)
HELD_AUDIO_PEAK = Gauge(
    "speechmesh_held_audio_peak_seconds", "The most audio held at once since the start"
)
QUEUE_DEPTH = Gauge("speechmesh_batch_queue_depth", "Items waiting for a batch", ["model"])
BATCH_SIZE = Histogram(
    "speechmesh_batch_size",
    "Items per batched model call",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_SECONDS = Histogram(
    "speechmesh_batch_duration_seconds",
    "Wall time of one batched model call",
    ["model"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
REAL_TIME_FACTOR = Histogram(
    "speechmesh_real_time_factor",
    "Processing time divided by audio duration, per request",
    ["model", "task"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)

tracer = trace.get_tracer("speechmesh")
_started_metrics_port: int | None = None


def setup_telemetry(config: TelemetryConfig, service_name: str) -> None:
    """Starts the /metrics endpoint and installs a tracer provider, as configured."""
    global _started_metrics_port
    if config.metrics_port is not None and _started_metrics_port is None:
        start_http_server(config.metrics_port)
        _started_metrics_port = config.metrics_port
        log.info("metrics on :%d/metrics", config.metrics_port)
    if config.tracing == "none":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if config.tracing == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as error:
            raise RuntimeError(
                "telemetry.tracing 'otlp' needs the exporter: pip install 'speechmesh[otlp]'"
            ) from error
        exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint)
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def extract_context(metadata: Mapping[str, str]) -> Context:
    """The trace context a caller sent in its metadata (W3C traceparent)."""
    return propagate.extract(carrier=dict(metadata))
