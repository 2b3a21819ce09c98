"""speechmesh.vad.v1.VoiceActivity: protobuf ↔ domain, validation, and the two RPCs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from speechmesh.runtime.audio import AudioSpec, Encoding, decode_request_audio
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.pool import ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.streams import check_stream_seconds, config_first
from speechmesh.runtime.telemetry import REAL_TIME_FACTOR
from speechmesh.services.vad.segmentation import (
    VOICE_ACTIVITY,
    DetectionRun,
    EventKind,
    SpeechEvent,
    vad_params,
)
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc


def segment_proto(start: int, end: int | None, rate: int) -> vad_pb2.SpeechSegment:
    segment = vad_pb2.SpeechSegment(start_sample=start, start_ms=start * 1000 / rate)
    if end is not None:
        segment.end_sample, segment.end_ms = end, end * 1000 / rate
    return segment


class VoiceActivityServicer(vad_pb2_grpc.VoiceActivityServicer):
    def __init__(self, pool: ModelPool, limits: LimitsConfig) -> None:
        self._pool = pool
        self._limits = limits

    async def Detect(
        self, request: vad_pb2.DetectRequest, context: Context
    ) -> vad_pb2.DetectResponse:
        rid = request_id(request.request_id)
        model = self._pool.get(request.model, VOICE_ACTIVITY)
        params = vad_params(request.options)
        decoded = await decode_request_audio(request.audio, "audio", self._limits.max_audio_seconds)
        started = time.perf_counter()
        # Decoded samples go through the same streaming path as StreamingDetect, so both
        # find exactly the same segments.
        rate = decoded.sample_rate_hz
        run = DetectionRun(model, AudioSpec(Encoding.PCM_F32LE, rate, 1), params)
        events = await run.feed(decoded.samples.tobytes())
        events += await run.finish()
        REAL_TIME_FACTOR.labels(model.id, "detect").observe(
            (time.perf_counter() - started) / max(run.samples_in / rate, 1e-9)
        )
        return vad_pb2.DetectResponse(
            request_id=rid,
            model=model.id,
            segments=[
                segment_proto(e.start, e.end, rate) for e in events if e.kind is EventKind.END
            ],
            sample_rate_hz=rate,
            total_samples=run.samples_in,
        )

    async def StreamingDetect(
        self, request_iterator: AsyncIterator[vad_pb2.StreamingDetectRequest], context: Context
    ) -> AsyncIterator[vad_pb2.StreamingDetectResponse]:
        config, payload = await config_first(request_iterator, self._limits.stream_idle_timeout_s)
        rid = request_id(config.request_id)
        model = self._pool.get(config.model, VOICE_ACTIVITY)
        params = vad_params(config.options, "config.options")
        spec = AudioSpec.from_proto(config.format, "config.format")
        run = DetectionRun(model, spec, params)
        async for message in payload:
            events = await run.feed(message.audio.data)
            check_stream_seconds(run.samples_in, run.input_rate_hz, self._limits.max_stream_seconds)
            for event in events:
                yield self._event_response(rid, event, run)
        for event in await run.finish():
            yield self._event_response(rid, event, run)
        yield vad_pb2.StreamingDetectResponse(
            request_id=rid,
            processed_samples=run.samples_in,
            end_of_stream=True,
            sample_rate_hz=run.input_rate_hz or spec.sample_rate_hz,
        )

    def _event_response(
        self, rid: str, event: SpeechEvent, run: DetectionRun
    ) -> vad_pb2.StreamingDetectResponse:
        rate = run.input_rate_hz
        assert rate, "events come only after the stream's rate is known"
        kind = (
            vad_pb2.SPEECH_EVENT_TYPE_START
            if event.kind is EventKind.START
            else vad_pb2.SPEECH_EVENT_TYPE_END
        )
        return vad_pb2.StreamingDetectResponse(
            request_id=rid,
            event=vad_pb2.SpeechEvent(
                type=kind,
                segment=segment_proto(event.start, event.end, rate),
                decided_at_sample=event.decided_at,
            ),
            processed_samples=run.samples_in,
            sample_rate_hz=rate,
        )
