"""Runs orchestrator graphs on the gateway: every step a task, values streaming between.

Each step output is a topic: an append-only sequence of items that any number of
consumers read in order while it grows. A step starts at once and reads its inputs as
they come, so streaming steps pass audio on chunk by chunk (the first synthesized
sentence is restored and reaches the client while the next is being synthesized);
steps that need a whole value (embed, a conversion target) wait for it. Calls to the
services go through the gateway's router with the run's remaining deadline, request
id and trace context; cancelling the run cancels every step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.gateway import graphs
from speechmesh.gateway.graphs import Plan
from speechmesh.gateway.proxy import outgoing_metadata
from speechmesh.gateway.routing import Router
from speechmesh.indextts.v1 import indextts_pb2, indextts_pb2_grpc
from speechmesh.models.v1 import models_pb2
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.runtime import audio
from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.errors import InvalidArgument, NotFound, SpeechmeshError
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.services.tts.text import split_text
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE
STREAMED_ENCODINGS = (S16, F32, audio_pb2.AUDIO_ENCODING_MULAW)
CHUNK_S = 0.2  # audio handed to a streaming step per message
# Longest sentence sent to SynthesizeSpectrogram at once (the service cuts longer ones).
SPECTROGRAM_PIECE_CHARS = 400
# Which embedding families a synthesis or conversion family can use.
EMBEDDING_SOURCES: dict[str, set[str]] = {
    "harmonyspeech-synthesizer": {"ge2e-resemblyzer", "harmonyspeech-v1-encoder"},
    "openvoice-v1": {"openvoice-v1"},
    "openvoice-v2": {"openvoice-v2"},
}


@dataclass(frozen=True)
class AudioPiece:
    samples: np.ndarray  # float32 mono
    rate: int


class Topic:
    """An output that grows; readers see every item in order, however late they join."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.items: list[Any] = []
        self.closed = False
        self._changed = asyncio.Condition()

    async def put(self, item: Any) -> None:
        async with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    async def read(self) -> AsyncIterator[Any]:
        index = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(
                    lambda seen=index: seen < len(self.items) or self.closed
                )
                batch, done = self.items[index:], self.closed
            index += len(batch)
            for item in batch:
                yield item
            if done and index >= len(self.items):
                return

    async def whole(self) -> list[Any]:
        return [item async for item in self.read()]


def audio_from_value(value: audio_pb2.Audio, field: str) -> AudioPiece:
    spec = audio.AudioSpec.from_proto(value.format, f"{field}.format")
    decoded = audio.decode(value.data, spec, f"{field}.data")
    return AudioPiece(decoded.samples.astype(np.float32), decoded.sample_rate_hz)


def f32_audio(piece: AudioPiece) -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=piece.rate, channels=1),
        data=piece.samples.astype("<f4").tobytes(),
    )


async def audio_chunks(topic: Topic) -> AsyncIterator[AudioPiece]:
    """The topic's audio re-cut into CHUNK_S pieces, as it arrives."""
    async for piece in topic.read():
        step = max(1, int(piece.rate * CHUNK_S))
        for start in range(0, len(piece.samples), step):
            yield AudioPiece(piece.samples[start : start + step], piece.rate)


def joined(pieces: list[AudioPiece], field: str) -> AudioPiece:
    if not pieces:
        raise InvalidArgument(field, "the audio is empty")
    rate = pieces[0].rate
    return AudioPiece(np.concatenate([p.samples for p in pieces]), rate)


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
        self.events: asyncio.Queue[pb.RunGraphResponse] = asyncio.Queue()
        self.started = time.perf_counter()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def stub(self, step: pb.Step, factory: Callable[[Any], Any], service: str) -> Any:
        replica = self.router.pick(service, self.plan.models[step.id].id)
        return factory(replica.channel)

    def call_options(self) -> dict[str, Any]:
        return {
            "timeout": self.context.time_remaining(),
            "metadata": outgoing_metadata(self.context),
        }

    def source(self, step: pb.Step, name: str) -> Topic | None:
        src = self.plan.sources[step.id].get(name)
        return None if src is None else self.topics[src.key]

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
    """Runs one step, filling its output topics; closes them whatever happens."""
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
    await run.emit_event(step, pb.STEP_EVENT_TYPE_FINISHED)


async def _detect(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    source = run.source(step, "audio")
    assert source is not None
    stub = run.stub(step, vad_pb2_grpc.VoiceActivityStub, "speechmesh.vad.v1.VoiceActivity")

    async def requests() -> AsyncIterator[vad_pb2.StreamingDetectRequest]:
        configured = False
        async for piece in audio_chunks(source):
            if not configured:
                configured = True
                yield vad_pb2.StreamingDetectRequest(
                    config=vad_pb2.StreamingDetectConfig(
                        request_id=run.rid,
                        model=run.plan.models[step.id].id,
                        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=piece.rate),
                        options=step.vad,
                    )
                )
            yield vad_pb2.StreamingDetectRequest(
                audio=audio_pb2.AudioChunk(data=piece.samples.astype("<f4").tobytes())
            )

    async for response in stub.StreamingDetect(requests(), **run.call_options()):
        if response.event.type == vad_pb2.SPEECH_EVENT_TYPE_END:
            await put(response.event.segment)


async def _transcribe(run: Run, step: pb.Step, put: Callable[[Any], Any]) -> None:
    source = run.source(step, "audio")
    assert source is not None
    stub = run.stub(step, stt_pb2_grpc.SpeechToTextStub, "speechmesh.stt.v1.SpeechToText")

    async def requests() -> AsyncIterator[stt_pb2.StreamingRecognizeRequest]:
        configured = False
        async for piece in audio_chunks(source):
            if not configured:
                configured = True
                yield stt_pb2.StreamingRecognizeRequest(
                    config=stt_pb2.StreamingRecognizeConfig(
                        request_id=run.rid,
                        model=run.plan.models[step.id].id,
                        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=piece.rate),
                        options=step.recognition,
                    )
                )
            yield stt_pb2.StreamingRecognizeRequest(
                audio=audio_pb2.AudioChunk(data=piece.samples.astype("<f4").tobytes())
            )

    async for response in stub.StreamingRecognize(requests(), **run.call_options()):
        for result in response.results:
            if result.is_final:
                await put(result)


async def _texts(topic: Topic) -> AsyncIterator[str]:
    """Text items, or the transcript of each final result."""
    async for item in topic.read():
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
    run: Run, step: pb.Step, put: Callable[[Any], Any], text: Topic
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
    source = run.source(step, "audio")
    assert source is not None
    clip = joined(await source.whole(), f"{step.id}.audio")
    stub = run.stub(
        step, conversion_pb2_grpc.SpeakerEncoderStub, "speechmesh.conversion.v1.SpeakerEncoder"
    )
    response = await stub.Embed(
        conversion_pb2.EmbedRequest(
            request_id=run.rid, model=run.plan.models[step.id].id, clips=[f32_audio(clip)]
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

    async def requests() -> AsyncIterator[Any]:
        configured = False
        async for piece in audio_chunks(source):
            if not configured:
                configured = True
                yield config(audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=piece.rate))
            yield message(audio_pb2.AudioChunk(data=piece.samples.astype("<f4").tobytes()))

    async for response in call(requests()):
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


class OutputWriter:
    """A graph output → StepOutput messages in the client's format."""

    def __init__(self, name: str, topic: Topic, fmt: audio_pb2.AudioFormat) -> None:
        self.name = name
        self.topic = topic
        self.format = fmt
        self.pieces = 0
        self.samples = 0
        self.rate = 0
        self._resampler: Any = None

    def _audio(self, piece: AudioPiece) -> pb.StepOutput:
        rate = self.format.sample_rate_hz or piece.rate
        samples = piece.samples
        if rate != piece.rate:
            import soxr

            if self._resampler is None:
                self._resampler = soxr.ResampleStream(piece.rate, rate, 1, dtype="float32")
            samples = self._resampler.resample_chunk(samples)
        encoding = self.format.encoding or S16
        spec = audio.AudioSpec(audio.Encoding(encoding), rate, 1)
        chunk = audio_pb2.AudioChunk(
            data=audio.encode(samples, rate, spec), sample_offset=self.samples
        )
        self.samples += len(samples)
        self.rate = rate
        return pb.StepOutput(
            name=self.name,
            audio=chunk,
            format=audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate, channels=1),
        )

    def message(self, item: Any) -> pb.StepOutput:
        self.pieces += 1
        if isinstance(item, AudioPiece):
            return self._audio(item)
        if isinstance(item, audio_pb2.SpeakerEmbedding):
            return pb.StepOutput(name=self.name, embedding=item)
        if isinstance(item, audio_pb2.Tensor):
            return pb.StepOutput(name=self.name, tensor=item)
        if isinstance(item, vad_pb2.SpeechSegment):
            return pb.StepOutput(name=self.name, segment=item)
        return pb.StepOutput(name=self.name, transcript=item)

    def summary(self) -> pb.OutputSummary:
        return pb.OutputSummary(
            name=self.name,
            num_pieces=self.pieces,
            total_samples=self.samples,
            sample_rate_hz=self.rate,
        )


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(self, router: Router, config: MeshConfig) -> None:
        self._router = router
        self._graphs = graphs.load_named_graphs(config.gateway.graphs)

    async def ListGraphs(
        self, request: pb.ListGraphsRequest, context: Context
    ) -> pb.ListGraphsResponse:
        return pb.ListGraphsResponse(
            request_id=request_id(request.request_id),
            graphs=[self._graphs[name] for name in sorted(self._graphs)],
        )

    def _find_model(self, model_id: str, services: tuple[str, ...]) -> models_pb2.ModelInfo | None:
        for service in services:
            try:
                replica = self._router.pick(service, model_id)
            except SpeechmeshError:
                continue
            if model_id:
                return replica.models[model_id]
            ready = [m for m in replica.models.values() if m.service == service]
            return ready[0] if ready else None
        return None

    async def RunGraph(
        self, request: pb.RunGraphRequest, context: Context
    ) -> AsyncIterator[pb.RunGraphResponse]:
        rid = request_id(request.request_id)
        await self._router.refreshed.wait()
        if request.WhichOneof("graph") == "graph_name":
            graph = self._graphs.get(request.graph_name)
            if graph is None:
                known = ", ".join(sorted(self._graphs)) or "none"
                raise NotFound(f"no graph named {request.graph_name!r} (known: {known})")
            field = f"graph {request.graph_name}"
        elif request.WhichOneof("graph") == "inline_graph":
            graph, field = request.inline_graph, "inline_graph"
        else:
            raise InvalidArgument("graph", "name a graph or send one inline")
        plan = graphs.validate(
            graph, self._find_model, lambda family: EMBEDDING_SOURCES.get(family), field
        )
        fmt = request.output_format
        if fmt.encoding and fmt.encoding not in STREAMED_ENCODINGS:
            raise InvalidArgument(
                "output_format.encoding", "graph outputs stream as raw PCM S16LE/F32LE or mu-law"
            )
        if fmt.sample_rate_hz:
            audio.AudioSpec.from_proto(
                audio_pb2.AudioFormat(encoding=S16, sample_rate_hz=fmt.sample_rate_hz),
                "output_format",
            )
        run = Run(plan, self._router, context, rid, fmt)
        for step in plan.order:
            for name, kind in graphs.OPS[step.op].outputs.items():
                run.topics[f"{step.id}.{name}"] = Topic(kind)
        await self._feed_inputs(run, request)
        async for response in self._execute(run, graph):
            yield response

    async def _feed_inputs(self, run: Run, request: pb.RunGraphRequest) -> None:
        for name in run.plan.required_inputs:
            if name not in request.inputs:
                raise InvalidArgument(f"inputs[{name}]", "this graph input is required")
        for name, kind in run.plan.inputs.items():
            if name not in request.inputs:
                continue
            value = request.inputs[name]
            given = graphs.VALUE_KINDS.get(value.WhichOneof("value") or "")
            if given is None or given not in graphs.ACCEPTS.get(kind, {kind}):
                raise InvalidArgument(
                    f"inputs[{name}]", f"expected {graphs.pb.ValueKind.Name(kind)}"
                )
            topic = Topic(kind)
            if given == graphs.AUDIO:
                await topic.put(audio_from_value(value.audio, f"inputs[{name}].audio"))
            elif given == graphs.TEXT:
                if not value.text.strip():
                    raise InvalidArgument(f"inputs[{name}].text", "the text is empty")
                await topic.put(value.text)
            else:
                await topic.put(getattr(value, value.WhichOneof("value")))
            await topic.close()
            run.topics[f"${name}"] = topic

    async def _execute(self, run: Run, graph: pb.Graph) -> AsyncIterator[pb.RunGraphResponse]:
        writers = [
            OutputWriter(name, run.topics[name], run.output_format) for name in graph.outputs
        ]
        tasks = [asyncio.create_task(run_step(run, step)) for step in run.plan.order]
        forwarders = [asyncio.create_task(_forward(run, writer)) for writer in writers]
        everything = asyncio.gather(*tasks, *forwarders)
        try:
            while True:
                getter = asyncio.create_task(run.events.get())
                done, _ = await asyncio.wait(
                    {getter, everything}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                everything.result()  # raises the first step failure
                while not run.events.empty():
                    yield run.events.get_nowait()
                break
        finally:
            for task in (*tasks, *forwarders):
                task.cancel()
            everything.cancel()
        yield pb.RunGraphResponse(
            request_id=run.rid,
            summary=pb.RunSummary(
                graph_name=graph.name,
                elapsed_ms=run.elapsed_ms(),
                outputs=[writer.summary() for writer in writers],
            ),
        )


async def _forward(run: Run, writer: OutputWriter) -> None:
    async for item in writer.topic.read():
        await run.events.put(pb.RunGraphResponse(request_id=run.rid, output=writer.message(item)))
    await run.events.put(
        pb.RunGraphResponse(
            request_id=run.rid, output=pb.StepOutput(name=writer.name, end_of_output=True)
        )
    )


class StepFailed(SpeechmeshError):
    """A service's failure inside a step: its status code, and the step named."""

    def __init__(self, step_id: str, error: grpc.aio.AioRpcError) -> None:
        super().__init__(f"step {step_id!r} failed: {error.code().name}: {error.details()}")
        self.code = error.code()
