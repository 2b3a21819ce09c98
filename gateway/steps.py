"""The orchestrator's steps: one runner per op, each a call to the service that does it.

A step reads its inputs through its own readers as they fill and puts what the
service answers into its output topic, waiting while a bounded consumer is full.
Calls go through the gateway's router with the run's remaining deadline, request id
and trace context.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.gateway import graphs
from speechmesh.gateway.graphs import Plan
from speechmesh.gateway.proxy import outgoing_metadata
from speechmesh.gateway.reference_cut import PIECE_SECONDS, speech_pieces
from speechmesh.gateway.routing import Router
from speechmesh.gateway.values import (
    F32,
    AudioPiece,
    Reader,
    Topic,
    audio_chunks,
    audio_from_value,
    f32_audio,
    joined,
)
from speechmesh.indextts.v1 import indextts_pb2, indextts_pb2_grpc
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.runtime.errors import InvalidArgument, SpeechmeshError
from speechmesh.runtime.service import Context
from speechmesh.runtime.text import split_text
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

# Longest sentence sent to SynthesizeSpectrogram at once (the service cuts longer ones).
SPECTROGRAM_PIECE_CHARS = 400
# Responses (outputs and step events) waiting for a slow client before the run waits.
EVENTS_IN_FLIGHT = 8


class Run:
    """One RunGraph call."""

    def __init__(
        self,
        plan: Plan,
        router: Router,
        context: Context,
        rid: str,
        output_format: audio_pb2.AudioFormat,
    ) -> None:
        self.plan = plan
        self.output_format = output_format
        self.router = router
        self.context = context
        self.rid = rid
        self.topics: dict[str, Topic] = {}
        self.readers: dict[tuple[str, str], Reader] = {}  # (step id, input) → its reader
        self.events: asyncio.Queue[pb.RunGraphResponse] = asyncio.Queue(EVENTS_IN_FLIGHT)
        self.started = time.perf_counter()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def stub(self, step: pb.Step, factory: Callable[[Any], Any], service: str) -> Any:
        replica = self.router.pick(service, self.plan.models[step.id].id)
        return factory(replica.channel)

    def call_options(self) -> dict[str, Any]:
        return {
            "timeout": self.context.time_remaining(),
            "metadata": outgoing_metadata(self.context, self.router.access),
        }

    def source(self, step: pb.Step, name: str) -> Reader | None:
        return self.readers.get((step.id, name))

    async def emit_event(self, step: pb.Step, kind: int) -> None:
        await self.events.put(
            pb.RunGraphResponse(
                request_id=self.rid,
                step_event=pb.StepEvent(
                    step_id=step.id,
                    type=kind,
                    elapsed_ms=self.elapsed_ms(),
                    model=self.plan.models[step.id].id,
                ),
            )
        )


async def run_step(run: Run, step: pb.Step) -> None:
    """Runs one step, filling its output topics; closes them whatever happens, and lets
    go of its inputs (a producer must never wait on a step that stopped reading)."""
    outputs = [run.topics[f"{step.id}.{name}"] for name in graphs.OPS[step.op].outputs]
    await run.emit_event(step, pb.STEP_EVENT_TYPE_STARTED)
    first = True

    async def put(item: Any) -> None:
        nonlocal first
        if first:
            first = False
            await run.emit_event(step, pb.STEP_EVENT_TYPE_FIRST_OUTPUT)
        await outputs[0].put(item)

    try:
        await STEP_RUNNERS[step.op](run, step, put)
    except grpc.aio.AioRpcError as error:
        raise StepFailed(step.id, error) from None
    finally:
        for topic in outputs:
            await topic.close()
        for name in run.plan.sources[step.id]:
            reader = run.readers.get((step.id, name))
            if reader is not None:
                await reader.abandon()
    await run.emit_event(step, pb.STEP_EVENT_TYPE_FINISHED)


async def config_first_audio(
    source: Reader,
    config: Callable[[audio_pb2.AudioFormat], Any],
    message: Callable[[audio_pb2.AudioChunk], Any],
) -> AsyncIterator[Any]:
    """A stream's requests: its config (at the rate of the first audio), then the audio."""
    configured = False
    async for piece in audio_chunks(source):
        if not configured:
            configured = True
            yield config(audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=piece.rate))
        yield message(audio_pb2.AudioChunk(data=piece.samples.astype("<f4").tobytes()))


async def _detect(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    source = run.source(step, "audio")
    assert source is not None
    stub = run.stub(step, vad_pb2_grpc.VoiceActivityStub, "speechmesh.vad.v1.VoiceActivity")
    model = run.plan.models[step.id].id
    requests = config_first_audio(
        source,
        lambda fmt: vad_pb2.StreamingDetectRequest(
            config=vad_pb2.StreamingDetectConfig(
                request_id=run.rid, model=model, format=fmt, options=step.vad
            )
        ),
        lambda chunk: vad_pb2.StreamingDetectRequest(audio=chunk),
    )
    async for response in stub.StreamingDetect(requests, **run.call_options()):
        if response.event.type == vad_pb2.SPEECH_EVENT_TYPE_END:
            await put(response.event.segment)


async def _transcribe(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    source = run.source(step, "audio")
    assert source is not None
    stub = run.stub(step, stt_pb2_grpc.SpeechToTextStub, "speechmesh.stt.v1.SpeechToText")
    model = run.plan.models[step.id].id
    requests = config_first_audio(
        source,
        lambda fmt: stt_pb2.StreamingRecognizeRequest(
            config=stt_pb2.StreamingRecognizeConfig(
                request_id=run.rid, model=model, format=fmt, options=step.recognition
            )
        ),
        lambda chunk: stt_pb2.StreamingRecognizeRequest(audio=chunk),
    )
    async for response in stub.StreamingRecognize(requests, **run.call_options()):
        for result in response.results:
            if result.is_final:
                await put(result)


async def _texts(source: Reader) -> AsyncIterator[str]:
    """Text items, or the transcript of each final result."""
    async for item in source.read():
        if isinstance(item, str):
            yield item
        elif item.alternatives and item.alternatives[0].transcript:
            yield item.alternatives[0].transcript


async def _synthesis_options(run: Run, step: pb.Step) -> tts_pb2.SynthesisOptions:
    options = tts_pb2.SynthesisOptions()
    options.CopyFrom(step.synthesis)
    embedding = run.source(step, "embedding")
    if embedding is not None:
        items = await embedding.whole()
        options.speaker_embedding.CopyFrom(items[-1])
    reference = run.source(step, "reference")
    if reference is not None:
        options.reference_audio.CopyFrom(f32_audio(joined(await reference.whole(), step.id)))
    return options


async def _synthesize(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    text = run.source(step, "text")
    assert text is not None
    model = run.plan.models[step.id]
    if model.service == graphs.INDEX_TTS:
        await _synthesize_index_tts(run, step, put, text)
        return
    options = await _synthesis_options(run, step)
    stub = run.stub(step, tts_pb2_grpc.TextToSpeechStub, graphs.TTS)
    async for sentence in _texts(text):
        request = tts_pb2.StreamingSynthesizeRequest(
            request_id=run.rid,
            model=model.id,
            text=sentence,
            options=options,
            output_format=audio_pb2.AudioFormat(encoding=F32),
        )
        await _put_chunks(stub.StreamingSynthesize(request, **run.call_options()), put)


async def _synthesize_index_tts(
    run: Run, step: pb.Step, put: Callable[[Any], Any], text: Reader
) -> None:
    """IndexTTS: the reference input is the speaker prompt, the emotion input its emotion."""
    options = indextts_pb2.SynthesisOptions()
    options.CopyFrom(step.index_tts)
    emotion = run.source(step, "emotion")
    if emotion is not None:
        options.emotion.audio.CopyFrom(f32_audio(joined(await emotion.whole(), step.id)))
    reference = run.source(step, "reference")
    if reference is None:
        raise InvalidArgument(
            f"steps[{step.id}].inputs", "IndexTTS needs a reference input (the speaker prompt)"
        )
    prompt = f32_audio(joined(await reference.whole(), f"{step.id}.reference"))
    stub = run.stub(step, indextts_pb2_grpc.IndexTTSStub, graphs.INDEX_TTS)
    async for sentence in _texts(text):
        request = indextts_pb2.StreamingSynthesizeRequest(
            request_id=run.rid,
            model=run.plan.models[step.id].id,
            text=sentence,
            speaker_prompt=prompt,
            options=options,
            output_format=audio_pb2.AudioFormat(encoding=F32),
        )
        await _put_chunks(stub.StreamingSynthesize(request, **run.call_options()), put)


async def _put_chunks(responses: AsyncIterator[Any], put: Callable[[Any], Any]) -> None:
    """Audio chunks of a synthesis stream (TextToSpeech or IndexTTS) as audio pieces."""
    async for response in responses:
        if response.WhichOneof("response") == "chunk":
            chunk = response.chunk
            samples = np.frombuffer(chunk.audio.data, "<f4").copy()
            await put(AudioPiece(samples, chunk.format.sample_rate_hz))


async def _synthesize_spectrogram(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    text = run.source(step, "text")
    assert text is not None
    options = await _synthesis_options(run, step)
    stub = run.stub(step, tts_pb2_grpc.TextToSpeechStub, graphs.TTS)
    async for item in _texts(text):
        # One mel per sentence, so the vocoder starts on the first while the next is made.
        for sentence in split_text(item, SPECTROGRAM_PIECE_CHARS):
            response = await stub.SynthesizeSpectrogram(
                tts_pb2.SynthesizeSpectrogramRequest(
                    request_id=run.rid,
                    model=run.plan.models[step.id].id,
                    text=sentence.text,
                    options=options,
                ),
                **run.call_options(),
            )
            await put(response.mel)


async def _vocode(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    mels = run.source(step, "mel")
    assert mels is not None
    stub = run.stub(step, tts_pb2_grpc.VocoderStub, "speechmesh.tts.v1.Vocoder")
    async for mel in mels.read():
        response = await stub.Vocode(
            tts_pb2.VocodeRequest(
                request_id=run.rid,
                model=run.plan.models[step.id].id,
                mel=mel,
                output_format=audio_pb2.AudioFormat(encoding=F32),
            ),
            **run.call_options(),
        )
        await put(audio_from_value(response.audio, f"{step.id}.audio"))


async def _embed(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    """The audio's embedding; given its speech segments, that of its speech pieces."""
    source = run.source(step, "audio")
    assert source is not None
    clips = [joined(await source.whole(), f"{step.id}.audio")]
    segments = run.source(step, "segments")
    if segments is not None:
        options = step.embed
        seconds = options.piece_seconds if options.HasField("piece_seconds") else PIECE_SECONDS
        field = f"steps[{step.id}].inputs[audio]"
        clips = speech_pieces(clips[0], await segments.whole(), seconds, field)
    stub = run.stub(
        step, conversion_pb2_grpc.SpeakerEncoderStub, "speechmesh.conversion.v1.SpeakerEncoder"
    )
    response = await stub.Embed(
        conversion_pb2.EmbedRequest(
            request_id=run.rid,
            model=run.plan.models[step.id].id,
            clips=[f32_audio(clip) for clip in clips],
        ),
        **run.call_options(),
    )
    await put(response.embedding)


async def _streamed_audio_step(
    run: Run,
    step: pb.Step,
    put: Callable[[Any], Any],
    call: Callable[[AsyncIterator[Any]], Any],
    config: Callable[[audio_pb2.AudioFormat], Any],
    message: Callable[[audio_pb2.AudioChunk], Any],
) -> None:
    """A config-first audio-in, audio-out stream (restore, tone convert)."""
    source = run.source(step, "audio")
    assert source is not None
    async for response in call(config_first_audio(source, config, message)):
        if response.audio.data:
            samples = np.frombuffer(response.audio.data, "<f4").copy()
            await put(AudioPiece(samples, response.format.sample_rate_hz))


async def _restore(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    stub = run.stub(
        step,
        conversion_pb2_grpc.AudioRestorationStub,
        "speechmesh.conversion.v1.AudioRestoration",
    )
    model = run.plan.models[step.id].id
    f32 = audio_pb2.AudioFormat(encoding=F32)
    await _streamed_audio_step(
        run,
        step,
        put,
        lambda requests: stub.StreamingRestore(requests, **run.call_options()),
        lambda fmt: conversion_pb2.StreamingRestoreRequest(
            config=conversion_pb2.StreamingRestoreConfig(
                request_id=run.rid,
                model=model,
                format=fmt,
                options=step.restoration,
                output_format=f32,
            )
        ),
        lambda chunk: conversion_pb2.StreamingRestoreRequest(audio=chunk),
    )


async def _tone_convert(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    target = run.source(step, "target")
    assert target is not None
    config = conversion_pb2.StreamingConvertConfig(
        request_id=run.rid,
        model=run.plan.models[step.id].id,
        options=step.conversion,
        output_format=audio_pb2.AudioFormat(encoding=F32),
        source_voice=step.source_voice,
    )
    if target.kind == graphs.EMBEDDING:
        config.target_embedding.CopyFrom((await target.whole())[-1])
    else:
        config.target_audio.CopyFrom(f32_audio(joined(await target.whole(), f"{step.id}.target")))
    source_embedding = run.source(step, "source_embedding")
    if source_embedding is not None:
        config.source_embedding.CopyFrom((await source_embedding.whole())[-1])
    stub = run.stub(
        step, conversion_pb2_grpc.VoiceConversionStub, "speechmesh.conversion.v1.VoiceConversion"
    )

    def configured(fmt: audio_pb2.AudioFormat) -> conversion_pb2.StreamingConvertRequest:
        config.format.CopyFrom(fmt)
        return conversion_pb2.StreamingConvertRequest(config=config)

    await _streamed_audio_step(
        run,
        step,
        put,
        lambda requests: stub.StreamingConvert(requests, **run.call_options()),
        configured,
        lambda chunk: conversion_pb2.StreamingConvertRequest(audio=chunk),
    )


STEP_RUNNERS = {
    pb.OP_DETECT: _detect,
    pb.OP_TRANSCRIBE: _transcribe,
    pb.OP_SYNTHESIZE: _synthesize,
    pb.OP_SYNTHESIZE_SPECTROGRAM: _synthesize_spectrogram,
    pb.OP_VOCODE: _vocode,
    pb.OP_EMBED: _embed,
    pb.OP_RESTORE: _restore,
    pb.OP_TONE_CONVERT: _tone_convert,
}


class StepFailed(SpeechmeshError):
    """A service's failure inside a step: its status code, and the step named."""

    def __init__(self, step_id: str, error: grpc.aio.AioRpcError) -> None:
        super().__init__(f"step {step_id!r} failed: {error.code().name}: {error.details()}")
        self.code = error.code()
