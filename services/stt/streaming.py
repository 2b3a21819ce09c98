"""One StreamingRecognize call: audio in, speech events and interim/final results out.

Three activities share the stream's state:

- the reader takes audio as it comes, decodes it to 16 kHz, runs the in-process VAD
  (the VAD service's own DetectionRun on its Silero model) and keeps the utterance's
  audio; at a speech start it opens an utterance, every interim interval it starts an
  interim decode (only one at a time per stream, and none while the model has a
  backlog: under load interims thin out instead of delaying finals), at a speech end
  it queues the utterance's final;
- interim decodes run beside it and advance the utterance's committed prefix;
- the finalizer decodes queued utterances in order, each forced to start with the
  words already committed, so a final never rewrites what an interim committed.

The finals queue is bounded, so a client sending faster than real time is slowed
by gRPC flow control instead of losing audio. Responses leave through one queue in
the order they were decided. Cancelling the call cancels all three at once; queued
model work of a cancelled stream is skipped by the batcher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from speechmesh.runtime.audio import AudioSpec, Encoding, StreamDecoder
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.pool import HostedModel
from speechmesh.runtime.streams import check_stream_seconds, off_loop_if_large
from speechmesh.services.stt.agreement import Agreement
from speechmesh.services.stt.messages import Timeline, confidence, words_proto
from speechmesh.services.stt.transcriber import (
    SAMPLE_RATE,
    DecodeJob,
    DecodeResult,
    DecodeSettings,
    Resampler,
    Transcriber,
)
from speechmesh.services.vad.segmentation import DetectionRun, EventKind, SpeechEvent, VadParams
from speechmesh.stt.v1 import stt_pb2

# Finals waiting for the model before the reader stops taking audio (backpressure).
MAX_QUEUED_FINALS = 4
# Audio kept before the open utterance: the VAD decides a start after the fact, with
# padding reaching back before it.
HISTORY_SAMPLES = 10 * SAMPLE_RATE
# The words of an interim result that are not committed yet.
TENTATIVE_STABILITY = 0.5
_DONE = object()


@dataclass(frozen=True)
class StreamSettings:
    final: DecodeSettings
    interim: DecodeSettings
    segmentation: VadParams
    interim_results: bool
    interim_interval_samples: int
    single_utterance: bool
    initial_prompt: str
    hotwords: str
    condition_on_previous_text: bool


@dataclass
class Utterance:
    index: int
    start: int  # 16 kHz samples from the start of the stream
    agreement: Agreement = field(default_factory=Agreement)
    next_interim_at: int = 0
    end: int | None = None


@dataclass
class _Failure:
    error: BaseException


class RecognitionStream:
    def __init__(
        self,
        request_id: str,
        model: HostedModel,
        vad_model: HostedModel,
        spec: AudioSpec,
        settings: StreamSettings,
        limits: LimitsConfig,
    ) -> None:
        self._rid = request_id
        self._model = model
        self._settings = settings
        self._limits = limits
        self._decoder = StreamDecoder(spec)
        self._model_rate: Resampler | None = None  # made once the input's rate is known
        self._vad = DetectionRun(
            vad_model, AudioSpec(Encoding.PCM_F32LE, SAMPLE_RATE, 1), settings.segmentation
        )
        self._spec = spec
        # Received 16 kHz audio as it came, chunk by chunk: appending never copies what
        # is already held, and a slice joins only the chunks it spans.
        self._chunks: list[np.ndarray] = []
        self._audio_start = 0  # stream position (16 kHz) of self._chunks[0][0]
        self._held = 0  # samples in self._chunks
        self._utterance: Utterance | None = None
        self._utterances = 0
        self._previous_text = ""
        self._finals: asyncio.Queue[Utterance | None] = asyncio.Queue(MAX_QUEUED_FINALS)
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._interim: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def _received(self) -> int:
        """16 kHz samples received so far."""
        return self._audio_start + self._held

    def _timeline(self) -> Timeline:
        rate = self._decoder.input_rate_hz or self._spec.sample_rate_hz or SAMPLE_RATE
        return Timeline(rate, self._decoder.samples_in)

    async def responses(self, payload: AsyncIterator[object]) -> AsyncIterator[object]:
        """The call's responses; failures of the reader or finalizer are raised here."""
        tasks = [
            asyncio.create_task(self._guard(self._read(payload))),
            asyncio.create_task(self._guard(self._finalize())),
        ]
        try:
            finished = 0
            while finished < len(tasks):
                item = await self._out.get()
                if item is _DONE:
                    finished += 1
                elif isinstance(item, _Failure):
                    raise item.error
                else:
                    yield item
            timeline = self._timeline()
            yield stt_pb2.StreamingRecognizeResponse(
                request_id=self._rid,
                processed_samples=timeline.total_samples,
                sample_rate_hz=timeline.rate_hz,
                end_of_stream=True,
            )
        finally:
            for task in [*tasks, self._interim]:
                if task is not None and not task.done():
                    task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _guard(self, work: object) -> None:
        try:
            await work  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._out.put(_Failure(error))
        finally:
            await self._out.put(_DONE)

    # -- reader ------------------------------------------------------------------

    async def _read(self, payload: AsyncIterator[object]) -> None:
        async for message in payload:
            data = message.audio.data  # type: ignore[attr-defined]
            decoded = await off_loop_if_large(len(data), self._decode, data)
            await self._process(decoded)
            self._check_length()
            if self._stopped:
                break
        if not self._stopped:
            rest = self._at_model_rate(self._decoder.flush())
            if self._model_rate is not None:
                rest = np.concatenate([rest, self._model_rate.flush()])
            await self._process(rest, final=True)
        # Only on success: a failed or cancelled call cancels the finalizer itself, and a
        # full queue with nobody left to empty it would hold the call open for ever.
        await self._finals.put(None)

    def _decode(self, data: bytes) -> np.ndarray:
        return self._at_model_rate(self._decoder.feed(data))

    def _at_model_rate(self, samples: np.ndarray) -> np.ndarray:
        """16 kHz as unary Recognize makes it, so a stream's finals hear the same audio."""
        if len(samples) == 0:
            return samples
        if self._model_rate is None:
            rate = self._decoder.input_rate_hz
            assert rate is not None, "decoded samples come with their rate"
            transcriber = self._model.engine
            assert isinstance(transcriber, Transcriber)
            self._model_rate = transcriber.resampler(rate)
        return self._model_rate.feed(samples)

    async def _process(self, samples: np.ndarray, *, final: bool = False) -> None:
        if len(samples):
            self._chunks.append(samples)
            self._held += len(samples)
        events = await self._vad.feed(samples.tobytes()) if len(samples) else []
        if final:
            events += await self._vad.finish()
        for event in events:
            await self._on_event(event)
            if self._stopped:
                return
        self._maybe_interim()
        self._trim()

    async def _on_event(self, event: SpeechEvent) -> None:
        if event.kind is EventKind.START:
            self._utterance = Utterance(
                self._utterances,
                event.start,
                next_interim_at=event.start + self._settings.interim_interval_samples,
            )
            self._utterances += 1
            self._emit_event(stt_pb2.SPEECH_EVENT_TYPE_START, event)
            return
        utterance = self._utterance
        assert utterance is not None and event.end is not None, "END without START"
        utterance.end = event.end
        self._utterance = None
        if self._interim is not None and not self._interim.done():
            # Its text would be discarded anyway; the final should not wait behind it.
            self._interim.cancel()
        self._emit_event(stt_pb2.SPEECH_EVENT_TYPE_END, event)
        await self._finals.put(utterance)
        if self._settings.single_utterance:
            self._stopped = True

    def _maybe_interim(self) -> None:
        utterance = self._utterance
        if (
            utterance is None
            or not self._settings.interim_results
            or self._received < utterance.next_interim_at
            or (self._interim is not None and not self._interim.done())
        ):
            return
        if self._model.backlogged:
            return  # interims are optional: under load, finals and other streams go first
        heard = self._received
        utterance.next_interim_at = heard + self._settings.interim_interval_samples
        self._interim = asyncio.create_task(self._run_interim(utterance, heard))

    def _trim(self) -> None:
        keep_from = self._received - HISTORY_SAMPLES
        if self._utterance is not None:
            keep_from = min(keep_from, self._utterance.start)
        if self._finals.qsize():
            return  # a queued final still needs its audio
        # Drop whole chunks that end before keep_from.
        while self._chunks and self._audio_start + len(self._chunks[0]) <= keep_from:
            dropped = self._chunks.pop(0)
            self._audio_start += len(dropped)
            self._held -= len(dropped)

    def _slice(self, start: int, end: int) -> np.ndarray:
        parts, position = [], self._audio_start
        for chunk in self._chunks:
            chunk_end = position + len(chunk)
            if chunk_end > start and position < end:
                parts.append(chunk[max(start - position, 0) : end - position])
            position = chunk_end
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _check_length(self) -> None:
        check_stream_seconds(self._received, SAMPLE_RATE, self._limits.max_stream_seconds)

    # -- interim results ---------------------------------------------------------

    async def _run_interim(self, utterance: Utterance, heard: int) -> None:
        job = DecodeJob(
            self._slice(utterance.start, heard),
            self._settings.interim,
            prompt=self._prompt(),
            prefix=utterance.agreement.committed_text,
            hotwords=self._settings.hotwords,
        )
        try:
            result: DecodeResult = await self._model.run(job)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._out.put(_Failure(error))
            return
        if utterance.end is not None or result.skipped_as_silence:
            return  # the final is on its way; a late interim would only confuse
        utterance.agreement.update(result.text)
        self._emit_interim(utterance, heard, result)

    def _emit_interim(self, utterance: Utterance, heard: int, result: DecodeResult) -> None:
        timeline = self._timeline()
        start, end = timeline.sample(utterance.start), timeline.sample(heard)
        agreement = utterance.agreement
        results = [
            _result(
                stt_pb2.SpeechRecognitionAlternative(transcript=" ".join(words)),
                utterance.index,
                (start, end),
                timeline,
                result,
                stability=stability,
            )
            for words, stability in (
                (agreement.committed, 1.0),
                (agreement.unstable, TENTATIVE_STABILITY),
            )
            if words
        ]
        if results:
            self._out.put_nowait(self._response(timeline, results=results))

    # -- finals ------------------------------------------------------------------

    async def _finalize(self) -> None:
        while (utterance := await self._finals.get()) is not None:
            assert utterance.end is not None
            job = DecodeJob(
                self._slice(utterance.start, utterance.end),
                self._settings.final,
                prompt=self._prompt(),
                prefix=utterance.agreement.committed_text,
                hotwords=self._settings.hotwords,
            )
            result: DecodeResult = await self._model.run(job)
            if result.text:
                self._previous_text = result.text
            self._emit_final(utterance, result)
            if self._settings.single_utterance:
                timeline = self._timeline()
                self._out.put_nowait(
                    self._response(
                        timeline,
                        speech_event=stt_pb2.SpeechEvent(
                            type=stt_pb2.SPEECH_EVENT_TYPE_END_OF_SINGLE_UTTERANCE,
                            utterance_index=utterance.index,
                            decided_at_sample=timeline.total_samples,
                        ),
                    )
                )
                return

    def _prompt(self) -> str:
        if self._settings.condition_on_previous_text and self._previous_text:
            return f"{self._settings.initial_prompt} {self._previous_text}".strip()
        return self._settings.initial_prompt

    def _emit_final(self, utterance: Utterance, result: DecodeResult) -> None:
        assert utterance.end is not None
        timeline = self._timeline()
        start, end = timeline.sample(utterance.start), timeline.sample(utterance.end)
        segments = result.segments
        logprob = (
            sum(s.avg_logprob for s in segments) / len(segments) if segments else float("-inf")
        )
        alternative = stt_pb2.SpeechRecognitionAlternative(
            transcript=result.text,
            confidence=confidence(logprob) if segments else 0.0,
            words=words_proto(segments, utterance.start, timeline),
        )
        final = _result(alternative, utterance.index, (start, end), timeline, result)
        self._out.put_nowait(self._response(timeline, results=[final]))

    # -- responses ---------------------------------------------------------------

    def _emit_event(self, kind: stt_pb2.SpeechEventType.ValueType, event: SpeechEvent) -> None:
        timeline = self._timeline()
        start = timeline.sample(event.start)
        speech_event = stt_pb2.SpeechEvent(
            type=kind,
            utterance_index=self._utterances - 1,
            start_sample=start,
            start_ms=timeline.ms(start),
            decided_at_sample=timeline.sample(event.decided_at),
        )
        if event.end is not None:
            end = timeline.sample(event.end)
            speech_event.end_sample, speech_event.end_ms = end, timeline.ms(end)
        self._out.put_nowait(self._response(timeline, speech_event=speech_event))

    def _response(self, timeline: Timeline, **fields: object) -> stt_pb2.StreamingRecognizeResponse:
        return stt_pb2.StreamingRecognizeResponse(
            request_id=self._rid,
            processed_samples=timeline.total_samples,
            sample_rate_hz=timeline.rate_hz,
            **fields,  # type: ignore[arg-type]
        )


def _result(
    alternative: stt_pb2.SpeechRecognitionAlternative,
    utterance_index: int,
    span: tuple[int, int],
    timeline: Timeline,
    decoded: DecodeResult,
    *,
    stability: float | None = None,
) -> stt_pb2.StreamingRecognitionResult:
    """An interim result (with its stability) or, without one, the utterance's final."""
    start, end = span
    return stt_pb2.StreamingRecognitionResult(
        alternatives=[alternative],
        is_final=stability is None,
        stability=stability or 0.0,
        utterance_index=utterance_index,
        start_sample=start,
        end_sample=end,
        start_ms=timeline.ms(start),
        end_ms=timeline.ms(end),
        language=decoded.language,
        language_probability=decoded.language_probability,
    )
