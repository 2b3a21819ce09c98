"""speechmesh.indextts.v1.IndexTTS: protobuf ↔ jobs, validation, Synthesize and its stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.indextts.v1 import indextts_pb2, indextts_pb2_grpc
from speechmesh.runtime.audio import AudioSpec, Encoding, decode, encode, output_rate_hz, resample
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.errors import InvalidArgument, LimitExceeded
from speechmesh.runtime.numbers import number_option
from speechmesh.runtime.pool import HostedModel, ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.streams import off_loop_if_large
from speechmesh.services.indextts.config import EMOTIONS
from speechmesh.services.indextts.engine import IndexTTSEngine, SynthesisJob
from speechmesh.services.indextts.pipeline import EmotionRequest, SegmentAudio
from speechmesh.services.indextts.sampling import SamplingSettings
from speechmesh.tts.v1 import tts_pb2

PROMPT_MAX_SECONDS = 60.0


def _sampling(options: indextts_pb2.SamplingOptions, field: str) -> SamplingSettings:
    d = SamplingSettings()
    s = SamplingSettings(
        do_sample=options.do_sample if options.HasField("do_sample") else d.do_sample,
        temperature=options.temperature if options.HasField("temperature") else d.temperature,
        top_p=options.top_p if options.HasField("top_p") else d.top_p,
        top_k=options.top_k if options.HasField("top_k") else d.top_k,
        num_beams=options.num_beams if options.HasField("num_beams") else d.num_beams,
        repetition_penalty=(
            options.repetition_penalty
            if options.HasField("repetition_penalty")
            else d.repetition_penalty
        ),
        length_penalty=options.length_penalty
        if options.HasField("length_penalty")
        else d.length_penalty,
        max_mel_tokens=options.max_mel_tokens
        if options.HasField("max_mel_tokens")
        else d.max_mel_tokens,
    )
    number_option(s.temperature, f"{field}.temperature", above=0)
    number_option(s.top_p, f"{field}.top_p", above=0, at_most=1)
    number_option(s.repetition_penalty, f"{field}.repetition_penalty", at_least=1)
    number_option(s.length_penalty, f"{field}.length_penalty")
    checks = [
        ("num_beams", 1 <= s.num_beams <= 8, "must be 1 to 8"),
        ("max_mel_tokens", 1 <= s.max_mel_tokens <= 1815, "must be 1 to 1815"),
    ]
    for name, ok, rule in checks:
        if not ok:
            raise InvalidArgument(f"{field}.{name}", f"{getattr(s, name)} {rule}")
    return s


def _emotion(
    emotion: indextts_pb2.Emotion, field: str, limits: LimitsConfig
) -> EmotionRequest | None:
    kind = emotion.WhichOneof("source")
    weight = emotion.weight if emotion.HasField("weight") else 1.0
    weight = number_option(weight, f"{field}.weight", at_least=0, at_most=1)
    if kind is None:
        if emotion.HasField("weight"):
            raise InvalidArgument(
                f"{field}.weight", "weighs an emotion source (vector, text or audio); none is set"
            )
        return None
    request = EmotionRequest(weight=weight, use_random=emotion.use_random)
    if kind == "vector":
        request.vector = [
            number_option(getattr(emotion.vector, name), f"{field}.vector.{name}", at_least=0)
            for name in EMOTIONS
        ]
    elif kind == "text":
        request.text = emotion.text.text
    else:
        samples, rate = _audio(emotion.audio, f"{field}.audio")
        request.audio, request.audio_rate = samples, rate
    return request


def _audio(audio: audio_pb2.Audio, field: str) -> tuple[np.ndarray, int]:
    spec = AudioSpec.from_proto(audio.format, f"{field}.format")
    decoded = decode(audio.data, spec, f"{field}.data", max_duration_s=PROMPT_MAX_SECONDS)
    return decoded.samples, decoded.sample_rate_hz


def _job(request, limits: LimitsConfig) -> SynthesisJob:  # type: ignore[no-untyped-def]
    if not request.text.strip():
        raise InvalidArgument("text", "text is empty")
    if len(request.text) > limits.max_text_chars:
        raise LimitExceeded(
            "max_text_chars", limits.max_text_chars, len(request.text), "characters"
        )
    if not request.HasField("speaker_prompt") or not request.speaker_prompt.data:
        raise InvalidArgument(
            "speaker_prompt", "a recording of the voice to speak with is required"
        )
    samples, rate = _audio(request.speaker_prompt, "speaker_prompt")
    options = request.options
    max_tokens = (
        options.max_text_tokens_per_segment
        if options.HasField("max_text_tokens_per_segment")
        else 120
    )
    if not 20 <= max_tokens <= 240:
        raise InvalidArgument(
            "options.max_text_tokens_per_segment", f"{max_tokens} is outside 20 to 240"
        )
    steps = options.diffusion_steps if options.HasField("diffusion_steps") else 25
    if not 1 <= steps <= 200:
        raise InvalidArgument("options.diffusion_steps", f"{steps} is outside 1 to 200")
    cfg = options.cfg_rate if options.HasField("cfg_rate") else 0.7
    cfg = number_option(cfg, "options.cfg_rate", at_least=0)
    return SynthesisJob(
        text=request.text,
        prompt_audio=samples,
        prompt_rate=rate,
        sampling=_sampling(options.sampling, "options.sampling"),
        emotion=_emotion(options.emotion, "options.emotion", limits),
        max_text_tokens=max_tokens,
        diffusion_steps=steps,
        cfg_rate=cfg,
        seed=options.seed if options.HasField("seed") else None,
    )


def _silence_ms(options: indextts_pb2.SynthesisOptions) -> int:
    return options.interval_silence_ms if options.HasField("interval_silence_ms") else 200


class IndexTTSServicer(indextts_pb2_grpc.IndexTTSServicer):
    def __init__(self, pool: ModelPool, limits: LimitsConfig) -> None:
        self._pool = pool
        self._limits = limits

    def _model(self, model_id: str) -> tuple[HostedModel, IndexTTSEngine]:
        model = self._pool.get(model_id, IndexTTSEngine.service)
        assert isinstance(model.engine, IndexTTSEngine)
        return model, model.engine

    async def Synthesize(
        self, request: indextts_pb2.SynthesizeRequest, context: Context
    ) -> indextts_pb2.SynthesizeResponse:
        rid = request_id(request.request_id)
        model, engine = self._model(request.model)
        spec = _output_spec(request.output_format, Encoding.WAV)
        job = await asyncio.to_thread(_job, request, self._limits)
        started = time.perf_counter()
        pieces: list[SegmentAudio] = await model.run(job)
        rate = engine.sample_rate
        gap = np.zeros(int(rate * _silence_ms(request.options) / 1000), np.float32)
        joined: list[np.ndarray] = []
        for index, piece in enumerate(pieces):
            if index:
                joined.append(gap)
            joined.append(_quantized(piece.samples))
        samples = np.concatenate(joined) if joined else np.zeros(0, np.float32)
        out_rate = output_rate_hz(rate, spec)
        data = await asyncio.to_thread(
            lambda: encode(
                resample(samples, rate, out_rate) if out_rate != rate else samples, out_rate, spec
            )
        )
        summary = tts_pb2.SynthesisSummary(
            total_samples=len(samples) * out_rate // rate,
            sample_rate_hz=out_rate,
            duration_ms=len(samples) * 1000 / rate,
            num_spans=len(pieces),
            num_chars=len(request.text),
            processing_ms=(time.perf_counter() - started) * 1000,
        )
        fmt = audio_pb2.AudioFormat(
            encoding=int(spec.encoding), sample_rate_hz=out_rate, channels=1
        )
        return indextts_pb2.SynthesizeResponse(
            request_id=rid,
            model=model.id,
            audio=audio_pb2.Audio(format=fmt, data=data),
            summary=summary,
        )

    async def StreamingSynthesize(
        self, request: indextts_pb2.StreamingSynthesizeRequest, context: Context
    ) -> AsyncIterator[indextts_pb2.StreamingSynthesizeResponse]:
        rid = request_id(request.request_id)
        model, engine = self._model(request.model)
        spec = _output_spec(request.output_format, Encoding.PCM_S16LE)
        if not spec.is_raw:
            raise InvalidArgument(
                "output_format.encoding",
                "streaming sends raw PCM chunks (PCM_S16LE, PCM_F32LE, MULAW)",
            )
        job = await asyncio.to_thread(_job, request, self._limits)
        job.first_segment_max_tokens = request.first_segment_max_text_tokens
        job.chunk_codes = request.chunk_mel_tokens
        if job.chunk_codes and job.sampling.num_beams != 1:
            raise InvalidArgument(
                "chunk_mel_tokens", "chunked streaming needs options.sampling.num_beams = 1"
            )
        rate = engine.sample_rate
        out_rate = output_rate_hz(rate, spec)
        fmt = audio_pb2.AudioFormat(
            encoding=int(spec.encoding), sample_rate_hz=out_rate, channels=1
        )
        gap = np.zeros(int(rate * _silence_ms(request.options) / 1000), np.float32)
        started = time.perf_counter()
        offset = 0
        current = -1
        # The stream is admitted through the model's batcher like a unary call (same
        # queue limit, metrics and thread); its pieces come back through a queue. A
        # caller that goes away sets job.cancelled: the work stops within one chunk.
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[SegmentAudio | None] = asyncio.Queue()
        job.sink = lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece)
        running = asyncio.ensure_future(model.run(job))
        running.add_done_callback(lambda _: pieces.put_nowait(None))

        def encoded(piece: SegmentAudio, opens: bool) -> tuple[bytes, int]:
            samples = _quantized(piece.samples)
            if opens:  # the pause between segments opens the next one
                samples = np.concatenate([gap, samples])
            if out_rate != rate:
                samples = resample(samples, rate, out_rate)
            return encode(samples, out_rate, spec), len(samples)

        try:
            while True:
                piece = await pieces.get()
                if piece is None:
                    break
                opens = piece.index != current and piece.index > 0
                current = piece.index
                data, count = await off_loop_if_large(piece.samples.nbytes, encoded, piece, opens)
                chunk = tts_pb2.SynthesisChunk(
                    audio=audio_pb2.AudioChunk(data=data, sample_offset=offset, num_samples=count),
                    format=fmt,
                    span=tts_pb2.TextSpan(index=piece.index),
                    end_of_span=piece.last_in_segment,
                )
                offset += count
                yield indextts_pb2.StreamingSynthesizeResponse(request_id=rid, chunk=chunk)
            await running
        finally:
            job.cancelled.set()
            if not running.done():
                running.cancel()
        summary = tts_pb2.SynthesisSummary(
            total_samples=offset,
            sample_rate_hz=out_rate,
            duration_ms=offset * 1000 / out_rate,
            num_spans=current + 1,
            num_chars=len(request.text),
            processing_ms=(time.perf_counter() - started) * 1000,
        )
        yield indextts_pb2.StreamingSynthesizeResponse(request_id=rid, summary=summary)


def _quantized(samples: np.ndarray) -> np.ndarray:
    """The vocoder's output as the reference delivers it: int16 of 32767 × x clamped and
    truncated toward zero, here over 32768 so that 16-bit output is those integers."""
    scaled = np.trunc(np.clip(samples.astype(np.float32) * np.float32(32767), -32767, 32767))
    return (scaled / 32768.0).astype(np.float32)


def _output_spec(fmt: audio_pb2.AudioFormat, default: Encoding) -> AudioSpec:
    if fmt.encoding == 0:
        fmt = audio_pb2.AudioFormat(
            encoding=int(default), sample_rate_hz=fmt.sample_rate_hz, channels=fmt.channels
        )
    if fmt.channels > 1:
        raise InvalidArgument(
            "output_format.channels", "IndexTTS-2 speaks mono: channels must be 0 or 1"
        )
    return AudioSpec.from_proto(fmt, "output_format", for_output=True)
