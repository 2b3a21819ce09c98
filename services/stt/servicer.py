"""speechmesh.stt.v1.SpeechToText: protobuf ↔ domain, validation, and the two RPCs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import numpy as np

from speechmesh.runtime.audio import AudioSpec, Encoding, decode_request_audio
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument
from speechmesh.runtime.pool import HostedModel, ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.streams import config_first
from speechmesh.runtime.telemetry import REAL_TIME_FACTOR
from speechmesh.services.stt.chunking import gap_around, plan_windows
from speechmesh.services.stt.messages import Timeline, segment_proto, words_proto
from speechmesh.services.stt.options import (
    decode_settings,
    hallucination_silence_s,
    segmentation_params,
)
from speechmesh.services.stt.streaming import RecognitionStream, StreamSettings
from speechmesh.services.stt.transcriber import (
    SAMPLE_RATE,
    DecodedSegment,
    DecodeJob,
    DecodeResult,
    DecodeSettings,
    Transcriber,
)
from speechmesh.services.vad.segmentation import VOICE_ACTIVITY, DetectionRun, EventKind, VadParams
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc

DEFAULT_INTERIM_INTERVAL_MS = 500
MIN_INTERIM_INTERVAL_MS = 100


@dataclasses.dataclass
class _Window:
    start: int  # 16 kHz samples from the start of the audio
    end: int
    result: DecodeResult


class SpeechToTextServicer(stt_pb2_grpc.SpeechToTextServicer):
    def __init__(self, pool: ModelPool, limits: LimitsConfig) -> None:
        self._pool = pool
        self._limits = limits

    def _model(self, model_id: str) -> tuple[HostedModel, Transcriber]:
        model = self._pool.get(model_id, Transcriber.service)
        assert isinstance(model.engine, Transcriber)
        return model, model.engine

    def _vad(self) -> HostedModel:
        try:
            return self._pool.get("", VOICE_ACTIVITY)
        except Exception as error:
            raise FailedPrecondition(
                "this STT server hosts no voice activity model (e.g. family silero-vad), which "
                f"streaming and long audio need: {error}"
            ) from error

    async def Recognize(
        self, request: stt_pb2.RecognizeRequest, context: Context
    ) -> stt_pb2.RecognizeResponse:
        rid = request_id(request.request_id)
        model, engine = self._model(request.model)
        options = request.options
        settings = decode_settings(options, "options", engine)
        silence_guard_s = hallucination_silence_s(options, "options")
        segmentation = segmentation_params(options, "options")
        decoded = await decode_request_audio(request.audio, "audio", self._limits.max_audio_seconds)
        started = time.perf_counter()
        audio = await asyncio.to_thread(engine.model_audio, decoded.samples, decoded.sample_rate_hz)
        total = len(audio)
        window = engine.window_samples
        use_vad = options.vad_filter or total > window or silence_guard_s is not None
        speech = await self._speech(audio, segmentation) if use_vad else [(0, total)]
        chunked = options.vad_filter or total > window
        windows = plan_windows(speech, window) if chunked else [(0, total)]
        decoded_windows = await self._decode_windows(model, audio, windows, settings, options)
        if silence_guard_s is not None:
            _drop_segments_in_pauses(decoded_windows, speech, total, silence_guard_s)
        timeline = Timeline(decoded.sample_rate_hz, len(decoded.samples))
        response = self._response(rid, model.id, decoded_windows, timeline)
        response.speech_duration_ms = (
            sum(w.end - w.start for w in decoded_windows) * 1000 / (SAMPLE_RATE)
        )
        REAL_TIME_FACTOR.labels(model.id, "recognize").observe(
            (time.perf_counter() - started) / max(total / SAMPLE_RATE, 1e-9)
        )
        return response

    async def _speech(self, audio: np.ndarray, params: VadParams) -> list[tuple[int, int]]:
        """Speech segments (16 kHz samples) found by the in-process VAD model."""
        run = DetectionRun(self._vad(), AudioSpec(Encoding.PCM_F32LE, SAMPLE_RATE, 1), params)
        events = await run.feed(audio.tobytes())
        events += await run.finish()
        return [(e.start, e.end) for e in events if e.kind is EventKind.END and e.end is not None]

    async def _decode_windows(
        self,
        model: HostedModel,
        audio: np.ndarray,
        windows: list[tuple[int, int]],
        settings: DecodeSettings,
        options: stt_pb2.RecognitionOptions,
    ) -> list[_Window]:
        def job(start: int, end: int, previous: str) -> DecodeJob:
            prompt = f"{options.initial_prompt} {previous}".strip()
            return DecodeJob(audio[start:end], settings, prompt=prompt, hotwords=options.hotwords)

        conditioned = (
            options.condition_on_previous_text
            if options.HasField("condition_on_previous_text")
            else True
        )
        if not conditioned or len(windows) == 1:
            # Independent windows go to the batcher together and share model calls.
            results = await asyncio.gather(*(model.run(job(s, e, "")) for s, e in windows))
            return [_Window(s, e, r) for (s, e), r in zip(windows, results, strict=True)]
        decoded: list[_Window] = []
        previous = ""
        for start, end in windows:
            result: DecodeResult = await model.run(job(start, end, previous))
            previous = result.text or previous
            decoded.append(_Window(start, end, result))
        return decoded

    def _response(
        self, rid: str, model_id: str, windows: list[_Window], timeline: Timeline
    ) -> stt_pb2.RecognizeResponse:
        response = stt_pb2.RecognizeResponse(
            request_id=rid,
            model=model_id,
            sample_rate_hz=timeline.rate_hz,
            total_samples=timeline.total_samples,
            duration_ms=timeline.ms(timeline.total_samples),
        )
        texts = []
        for window in windows:
            for segment in window.result.segments:
                response.segments.append(
                    segment_proto(segment, window.start, timeline, len(response.words))
                )
                response.words.extend(words_proto([segment], window.start, timeline))
                texts.append(segment.text.strip())
        response.text = " ".join(t for t in texts if t)
        spoken = [w.result for w in windows if w.result.segments] or [w.result for w in windows]
        if spoken:
            response.language = spoken[0].language
            response.language_probability = spoken[0].language_probability
        return response

    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterator[stt_pb2.StreamingRecognizeRequest],
        context: Context,
    ) -> AsyncIterator[stt_pb2.StreamingRecognizeResponse]:
        config, payload = await config_first(request_iterator, self._limits.stream_idle_timeout_s)
        rid = request_id(config.request_id)
        model, engine = self._model(config.model)
        vad = self._vad()
        spec = AudioSpec.from_proto(config.format, "config.format")
        stream = RecognitionStream(
            rid, model, vad, spec, _stream_settings(config, engine), self._limits
        )
        async for response in stream.responses(payload):
            yield response  # type: ignore[misc]


def _stream_settings(
    config: stt_pb2.StreamingRecognizeConfig, engine: Transcriber
) -> StreamSettings:
    options = config.options
    final = decode_settings(options, "config.options", engine)
    interval_ms = (
        config.interim_interval_ms
        if config.HasField("interim_interval_ms")
        else DEFAULT_INTERIM_INTERVAL_MS
    )
    if interval_ms < MIN_INTERIM_INTERVAL_MS:
        raise InvalidArgument(
            "config.interim_interval_ms", f"must be at least {MIN_INTERIM_INTERVAL_MS} ms"
        )
    if options.HasField("hallucination_silence_threshold_s"):
        hallucination_silence_s(options, "config.options")  # validated; streams endpoint by VAD
    # Interims are drafts: greedy, no timestamps, no fallback; the final decodes properly.
    interim = dataclasses.replace(
        final,
        beam_size=1,
        temperatures=(0.0,),
        word_timestamps=False,
        without_timestamps=True,
    )
    return StreamSettings(
        final=final,
        interim=interim,
        segmentation=segmentation_params(options, "config.options"),
        interim_results=config.interim_results,
        interim_interval_samples=interval_ms * SAMPLE_RATE // 1000,
        single_utterance=config.single_utterance,
        initial_prompt=options.initial_prompt,
        hotwords=options.hotwords,
        condition_on_previous_text=(
            options.condition_on_previous_text
            if options.HasField("condition_on_previous_text")
            else True
        ),
    )


def _drop_segments_in_pauses(
    windows: list[_Window], speech: list[tuple[int, int]], total: int, min_pause_s: float
) -> None:
    """Drops text that overlaps no detected speech and sits in a long pause."""
    min_pause = int(min_pause_s * SAMPLE_RATE)

    def invented(window: _Window, segment: DecodedSegment) -> bool:
        start = window.start + int(segment.start_s * SAMPLE_RATE)
        end = window.start + int(segment.end_s * SAMPLE_RATE)
        if any(s < end and start < e for s, e in speech):
            return False
        pause_start, pause_end = gap_around(speech, (start + end) // 2, total)
        return pause_end - pause_start >= min_pause

    for window in windows:
        window.result.segments = [s for s in window.result.segments if not invented(window, s)]
