"""speechmesh.tts.v1.TextToSpeech: protobuf ↔ domain, validation, and the four RPCs.

Every RPC goes the same way: the text is split into pieces (speechmesh/runtime/text.py, or
the family's own cut: Synthesizer.pieces; Synthesize and SynthesizeSpectrogram keep it
whole for a family that asks so),
the pieces run through the model in order with one piece of look-ahead
(pipeline.py), and their audio is resampled and encoded piece by piece (output.py).
Synthesize collects what StreamingSynthesize sends, so both carry the same samples. A
stream also takes the parts of a piece that an engine makes within it (Chatterbox's
stream_chunk_tokens, which Synthesize refuses), each sent as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.audio import AudioSpec, Encoding, decode
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.errors import InvalidArgument, NotFound
from speechmesh.runtime.pool import HostedModel, ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.streams import check_stream_seconds, config_first
from speechmesh.runtime.telemetry import REAL_TIME_FACTOR
from speechmesh.runtime.text import Piece, TextSplitter
from speechmesh.services.tts.engine import (
    TEXT_TO_SPEECH,
    SpeakerEmbedding,
    SpectrogramSynthesis,
    SynthesisJob,
    SynthesisParams,
    Synthesizer,
)
from speechmesh.services.tts.output import AudioOut, output_spec
from speechmesh.services.tts.pipeline import each, in_order
from speechmesh.services.tts.tensors import tensor_from_mel
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc


@dataclass(frozen=True)
class FlushMark:
    """A bidi flush, in order among the pieces."""

    index: int
    end_char: int


def synthesis_params(
    options: tts_pb2.SynthesisOptions, field: str, limits: LimitsConfig
) -> SynthesisParams:
    """A request's SynthesisOptions in domain terms (each model checks them further)."""

    def optional(name: str) -> Any:
        return getattr(options, name) if options.HasField(name) else None

    speed = optional("speed")
    embedding = None
    reference = None
    speaker = options.WhichOneof("speaker")
    if speaker == "speaker_embedding":
        proto = options.speaker_embedding
        values = np.asarray(proto.values, np.float32)
        if not proto.model_family:
            raise InvalidArgument(f"{field}.speaker_embedding.model_family", "must be set")
        if len(values) == 0 or not np.isfinite(values).all():
            raise InvalidArgument(
                f"{field}.speaker_embedding.values", "must be a non-empty vector of finite values"
            )
        embedding = SpeakerEmbedding(proto.model_family, proto.model, values)
    elif speaker == "reference_audio":
        audio = options.reference_audio
        spec = AudioSpec.from_proto(audio.format, f"{field}.reference_audio.format")
        reference = decode(
            audio.data,
            spec,
            f"{field}.reference_audio.data",
            max_duration_s=limits.max_audio_seconds,
        )
    case = options.WhichOneof("family_options")
    family_options = (
        {f.name: value for f, value in getattr(options, case).ListFields()} if case else {}
    )
    return SynthesisParams(
        voice=options.voice,
        language=options.language,
        speed=1.0 if speed is None else float(speed),
        pitch=optional("pitch"),
        energy=optional("energy"),
        seed=optional("seed"),
        speaker_embedding=embedding,
        reference_audio=reference,
        family_options_case=case,
        family_options=family_options,
    )


def prepare(engine: Synthesizer, params: SynthesisParams, field: str) -> Any:
    """The engine's settings; its field names put under the request's options field."""
    try:
        return engine.prepare(params)
    except InvalidArgument as error:
        violation = error.violations[0]
        raise InvalidArgument(f"{field}.{violation.field}", violation.description) from None


def check_text(text: str, field: str, limit: int) -> None:
    if not text.strip():
        raise InvalidArgument(field, "is empty: give the text to speak")
    if len(text) > limit:
        raise InvalidArgument(
            field,
            f"has {len(text)} characters; the server's limit max_text_chars is {limit}",
        )
    check_no_control_characters(text, field)


def check_no_control_characters(text: str, field: str) -> None:
    """Control characters (NUL, ESC, ... but tab and line breaks) are refused: no voice
    reads them, and phonemizers fail on them ("embedded null character")."""
    for position, character in enumerate(text):
        if character not in "\t\n\r" and unicodedata.category(character) == "Cc":
            raise InvalidArgument(
                field,
                f"has the control character U+{ord(character):04X} at position {position}; "
                "only tab, line feed and carriage return are allowed",
            )


def unary_pieces(text: str, engine: Synthesizer, settings: Any) -> list[Piece]:
    """The pieces of a unary request: its sentences, or the whole text (stripped) as one
    piece for a family that reads a request as one sequence."""
    if engine.whole_text_unary:
        start = len(text) - len(text.lstrip())
        body = text.strip()
        return [Piece(0, body, start, start + len(body))]
    return engine.pieces(text, settings)


def span(piece: Piece) -> tts_pb2.TextSpan:
    return tts_pb2.TextSpan(index=piece.index, start_char=piece.start_char, end_char=piece.end_char)


class Synthesis:
    """One synthesis in progress: its model, settings, output and totals."""

    def __init__(
        self, model: HostedModel, params: SynthesisParams, spec: AudioSpec, field: str
    ) -> None:
        self.started = time.perf_counter()
        self.model = model
        self.engine: Synthesizer = model.engine  # type: ignore[assignment]
        self.settings = prepare(self.engine, params, field)
        self.out = AudioOut(spec, self.engine.sample_rate_hz)
        self.spans = 0
        self.chars = 0

    def pieces(
        self, items: Any, parts: bool = False
    ) -> contextlib.aclosing[AsyncIterator[tuple[Any, Any, bool]]]:
        """(item, audio, last) in order; closed on exit, so a cancelled call stops
        synthesis. `parts`: a stream, which also takes the parts of a piece."""
        return contextlib.aclosing(in_order(self.model, self.settings, items, parts))

    def chunks(
        self, piece: Piece, audio: np.ndarray, last: bool = True
    ) -> list[tts_pb2.SynthesisChunk]:
        """A piece's audio (or, not `last`, a part of it) as stream chunks."""
        self.spans += last
        encoded = self.out.stream(audio, more=not last)
        return [
            tts_pb2.SynthesisChunk(
                audio=audio_pb2.AudioChunk(
                    data=chunk.data,
                    sample_offset=chunk.sample_offset,
                    num_samples=chunk.num_samples,
                ),
                format=self.out.format,
                span=span(piece),
                end_of_span=last and index == len(encoded) - 1,
            )
            for index, chunk in enumerate(encoded)
        ]

    def tail(self) -> tts_pb2.SynthesisChunk | None:
        """The stream encoder's last bytes, in a chunk of no samples and no span."""
        data = self.out.finish()
        if not data:
            return None
        return tts_pb2.SynthesisChunk(
            audio=audio_pb2.AudioChunk(data=data, sample_offset=self.out.samples, num_samples=0),
            format=self.out.format,
        )

    def summary(self) -> tts_pb2.SynthesisSummary:
        elapsed = time.perf_counter() - self.started
        seconds = self.out.samples / self.out.rate_hz
        REAL_TIME_FACTOR.labels(self.model.id, "synthesize").observe(elapsed / max(seconds, 1e-9))
        return tts_pb2.SynthesisSummary(
            total_samples=self.out.samples,
            sample_rate_hz=self.out.rate_hz,
            duration_ms=seconds * 1000,
            num_spans=self.spans,
            num_chars=self.chars,
            processing_ms=elapsed * 1000,
        )


class TextToSpeechServicer(tts_pb2_grpc.TextToSpeechServicer):
    def __init__(self, pool: ModelPool, limits: LimitsConfig) -> None:
        self._pool = pool
        self._limits = limits

    def _start(
        self,
        model_id: str,
        options: tts_pb2.SynthesisOptions,
        fmt: audio_pb2.AudioFormat,
        default: Encoding,
        field_prefix: str = "",
        stream: bool = False,
    ) -> Synthesis:
        model = self._pool.get(model_id, TEXT_TO_SPEECH)
        spec = output_spec(fmt, default, f"{field_prefix}output_format")
        params = synthesis_params(options, f"{field_prefix}options", self._limits)
        return Synthesis(model, replace(params, stream=stream), spec, f"{field_prefix}options")

    async def Synthesize(
        self, request: tts_pb2.SynthesizeRequest, context: Context
    ) -> tts_pb2.SynthesizeResponse:
        rid = request_id(request.request_id)
        check_text(request.text, "text", self._limits.max_text_chars)
        run = self._start(request.model, request.options, request.output_format, Encoding.WAV)
        pieces = unary_pieces(request.text, run.engine, run.settings)
        run.chars = len(request.text)
        async with run.pieces(each(pieces)) as results:
            async for _, audio, _ in results:
                run.spans += 1
                run.out.add(audio)
        data = await asyncio.to_thread(run.out.whole)
        return tts_pb2.SynthesizeResponse(
            request_id=rid,
            model=run.model.id,
            audio=audio_pb2.Audio(format=run.out.format, data=data),
            summary=run.summary(),
        )

    async def StreamingSynthesize(
        self, request: tts_pb2.StreamingSynthesizeRequest, context: Context
    ) -> AsyncIterator[tts_pb2.StreamingSynthesizeResponse]:
        rid = request_id(request.request_id)
        check_text(request.text, "text", self._limits.max_text_chars)
        run = self._start(
            request.model, request.options, request.output_format, Encoding.PCM_S16LE, stream=True
        )
        pieces = run.engine.pieces(request.text, run.settings)
        run.chars = len(request.text)
        async with run.pieces(each(pieces), parts=True) as results:
            async for piece, audio, last in results:
                for chunk in await asyncio.to_thread(run.chunks, piece, audio, last):
                    yield tts_pb2.StreamingSynthesizeResponse(request_id=rid, chunk=chunk)
        tail = await asyncio.to_thread(run.tail)
        if tail is not None:
            yield tts_pb2.StreamingSynthesizeResponse(request_id=rid, chunk=tail)
        yield tts_pb2.StreamingSynthesizeResponse(request_id=rid, summary=run.summary())

    async def BidiSynthesize(
        self, request_iterator: AsyncIterator[tts_pb2.BidiSynthesizeRequest], context: Context
    ) -> AsyncIterator[tts_pb2.BidiSynthesizeResponse]:
        config, payload = await config_first(request_iterator, self._limits.stream_idle_timeout_s)
        rid = request_id(config.request_id)
        run = self._start(
            config.model,
            config.options,
            config.output_format,
            Encoding.PCM_S16LE,
            "config.",
            stream=True,
        )
        splitter = TextSplitter(run.engine.max_piece_chars)

        async def items() -> AsyncIterator[Piece | FlushMark]:
            flushes = 0
            index = 0
            async for message in payload:
                index += 1
                if message.WhichOneof("request") == "text":
                    check_no_control_characters(message.text, f"requests[{index}].text")
                    if splitter.received_chars + len(message.text) > self._limits.max_text_chars:
                        raise InvalidArgument(
                            f"requests[{index}].text",
                            f"the stream's text would reach "
                            f"{splitter.received_chars + len(message.text)} characters; the "
                            f"server's limit max_text_chars is {self._limits.max_text_chars}",
                        )
                    for piece in splitter.feed(message.text):
                        yield piece
                else:
                    for piece in splitter.flush():
                        yield piece
                    yield FlushMark(flushes, splitter.received_chars)
                    flushes += 1
            for piece in splitter.flush():
                yield piece

        async with run.pieces(items(), parts=True) as results:
            async for item, audio, last in results:
                if isinstance(item, FlushMark):
                    done = tts_pb2.FlushDone(
                        flush_index=item.index, end_char=item.end_char, end_sample=run.out.samples
                    )
                    yield tts_pb2.BidiSynthesizeResponse(request_id=rid, flush_done=done)
                    continue
                for chunk in await asyncio.to_thread(run.chunks, item, audio, last):
                    yield tts_pb2.BidiSynthesizeResponse(request_id=rid, chunk=chunk)
                check_stream_seconds(
                    run.out.samples, run.out.rate_hz, self._limits.max_stream_seconds
                )
        run.chars = splitter.received_chars
        tail = await asyncio.to_thread(run.tail)
        if tail is not None:
            yield tts_pb2.BidiSynthesizeResponse(request_id=rid, chunk=tail)
        yield tts_pb2.BidiSynthesizeResponse(request_id=rid, summary=run.summary())

    async def SynthesizeSpectrogram(
        self, request: tts_pb2.SynthesizeSpectrogramRequest, context: Context
    ) -> tts_pb2.SynthesizeSpectrogramResponse:
        rid = request_id(request.request_id)
        check_text(request.text, "text", self._limits.max_text_chars)
        model = self._spectrogram_model(request.model)
        engine: Synthesizer = model.engine  # type: ignore[assignment]
        params = synthesis_params(request.options, "options", self._limits)
        settings = prepare(engine, params, "options")
        pieces = unary_pieces(request.text, engine, settings)
        mels = [await model.run(SynthesisJob(p.text, settings, spectrogram=True)) for p in pieces]
        first = mels[0]
        mel = np.concatenate([m.mel for m in mels], axis=1)
        if mel.shape[1] == 0:
            raise InvalidArgument(
                "text", f"nothing in it is speakable by model {model.id!r} (no frame made)"
            )
        assert isinstance(engine, SpectrogramSynthesis)
        return tts_pb2.SynthesizeSpectrogramResponse(
            request_id=rid,
            model=model.id,
            mel=tensor_from_mel(mel, first.kind),
            sample_rate_hz=first.sample_rate_hz,
            samples_per_frame=first.samples_per_frame,
            vocoder=engine.paired_vocoder,
        )

    def _spectrogram_model(self, model_id: str) -> HostedModel:
        task = models_pb2.TASK_SPECTROGRAM_SYNTHESIS
        capable = [m for m in self._pool.models if task in m.engine.tasks]
        if not model_id:
            if not capable:
                raise NotFound("this server hosts no model that synthesizes spectrograms")
            model_id = next((m.id for m in capable if m.config.default), capable[0].id)
        hosted = {m.id: m for m in self._pool.models}
        if model_id in hosted and hosted[model_id] not in capable:
            names = ", ".join(m.id for m in capable) or "none"
            raise InvalidArgument(
                "model",
                f"model {model_id!r} ({hosted[model_id].config.family}) synthesizes audio "
                f"directly and has no spectrogram output; spectrogram models here: {names}",
            )
        return self._pool.get(model_id, TEXT_TO_SPEECH)
