"""Runs orchestrator graphs on the gateway: every step a task, values streaming between.

A validated graph (graphs.py) becomes a run: each step output a topic (values.py)
with one reader per consumer, each step a task (steps.py) started at once that reads
its inputs as they come, so streaming steps pass audio on chunk by chunk (the first
synthesized sentence is restored and reaches the client while the next is being
synthesized) and steps that need a whole value (embed, a conversion target) wait for
it. Streamed readers and the response queue are bounded, so a client that reads
slowly slows the run down rather than growing the gateway. Input audio is decoded off
the event loop under the services' max_audio_seconds. This module turns the graph
outputs into the response stream; cancelling the run cancels every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.gateway import graphs
from speechmesh.gateway.routing import Router
from speechmesh.gateway.steps import Run, run_step
from speechmesh.gateway.values import F32, S16, AudioPiece, Reader, Topic
from speechmesh.models.v1 import models_pb2
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.runtime import audio
from speechmesh.runtime.config import LimitsConfig, MeshConfig
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, SpeechmeshError
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.vad.v1 import vad_pb2

STREAMED_ENCODINGS = (S16, F32, audio_pb2.AUDIO_ENCODING_MULAW)


class OutputWriter:
    """A graph output → StepOutput messages in the client's format."""

    def __init__(self, name: str, reader: Reader, fmt: audio_pb2.AudioFormat) -> None:
        self.name = name
        self.reader = reader
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
        self._limits: LimitsConfig = config.limits
        self._graphs = graphs.load_named_graphs(config.gateway.graphs)

    async def ListGraphs(
        self, request: pb.ListGraphsRequest, context: Context
    ) -> pb.ListGraphsResponse:
        return pb.ListGraphsResponse(
            request_id=request_id(request.request_id),
            graphs=[self._graphs[name] for name in sorted(self._graphs)],
        )

    def _find_model(self, model_id: str, services: tuple[str, ...]) -> models_pb2.ModelInfo | None:
        """The step's model, None when the mesh has none for its services; a named model
        that failed to load everywhere is FAILED_PRECONDITION with the backends' reason."""
        failed: FailedPrecondition | None = None
        for service in services:
            try:
                replica = self._router.pick(service, model_id)
            except FailedPrecondition as error:
                failed = failed or error
                continue
            except SpeechmeshError:
                continue
            if model_id:
                return replica.models[model_id]
            # The model the backend itself would pick, if it can serve now.
            default = next(
                (m for m in replica.models.values() if m.service == service and m.is_default),
                None,
            )
            if default is not None and default.state == models_pb2.MODEL_STATE_READY:
                return default
        if failed is not None and model_id:
            raise failed
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
        plan = graphs.validate(graph, self._find_model, field)
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
        writers = _wire(run, graph, request)
        await self._feed_inputs(run, request)
        async for response in self._execute(run, graph, writers):
            yield response

    async def _feed_inputs(self, run: Run, request: pb.RunGraphRequest) -> None:
        """Each given input as one item (a single item never fills a reader: no waiting)."""
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
            topic = run.topics[f"${name}"]
            if given == graphs.AUDIO:
                decoded = await audio.decode_request_audio(
                    value.audio, f"inputs[{name}].audio", self._limits.max_audio_seconds
                )
                samples = decoded.samples.astype(np.float32, copy=False)
                await topic.put(AudioPiece(samples, decoded.sample_rate_hz))
            elif given == graphs.TEXT:
                if not value.text.strip():
                    raise InvalidArgument(f"inputs[{name}].text", "the text is empty")
                await topic.put(value.text)
            else:
                await topic.put(getattr(value, value.WhichOneof("value")))
            await topic.close()

    async def _execute(
        self, run: Run, graph: pb.Graph, writers: list[OutputWriter]
    ) -> AsyncIterator[pb.RunGraphResponse]:
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


def _wire(run: Run, graph: pb.Graph, request: pb.RunGraphRequest) -> list[OutputWriter]:
    """A topic per step output and given input, a reader per consumer; the writers."""
    plan = run.plan
    for step in plan.order:
        for name, kind in graphs.OPS[step.op].outputs.items():
            run.topics[f"{step.id}.{name}"] = Topic(kind)
    for name, kind in plan.inputs.items():
        if name in request.inputs:  # an optional input not given: its readers see none
            run.topics[f"${name}"] = Topic(kind)
    unbounded = graphs.unbounded_inputs(plan)
    for step in plan.order:
        for name, source in plan.sources[step.id].items():
            if source.key in run.topics:
                bounded = (step.id, name) not in unbounded
                run.readers[(step.id, name)] = run.topics[source.key].subscribe(bounded)
    return [
        OutputWriter(name, run.topics[name].subscribe(bounded=True), run.output_format)
        for name in graph.outputs
    ]


async def _forward(run: Run, writer: OutputWriter) -> None:
    async for item in writer.reader.read():
        await run.events.put(pb.RunGraphResponse(request_id=run.rid, output=writer.message(item)))
    await run.events.put(
        pb.RunGraphResponse(
            request_id=run.rid, output=pb.StepOutput(name=writer.name, end_of_output=True)
        )
    )
