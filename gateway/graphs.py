"""Orchestrator graphs: what each op takes and makes, and the validation of a graph.

A graph is checked completely before anything runs, and every problem is an
INVALID_ARGUMENT naming the step (and input) at fault: unknown op, a model that is not
in the mesh or does not do the op, an unwired or unknown input, a reference to a
missing step or output, a kind mismatch (a spectrogram into a transcriber), an
embedding made by a family the consumer cannot use, a cycle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf import json_format

from speechmesh.models.v1 import models_pb2
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.runtime.config import ConfigError
from speechmesh.runtime.errors import InvalidArgument

TEXT, AUDIO, EMBEDDING, TENSOR, SEGMENTS, TRANSCRIPT = (
    pb.VALUE_KIND_TEXT,
    pb.VALUE_KIND_AUDIO,
    pb.VALUE_KIND_EMBEDDING,
    pb.VALUE_KIND_TENSOR,
    pb.VALUE_KIND_SEGMENTS,
    pb.VALUE_KIND_TRANSCRIPT,
)
# What may feed an input of each kind: a transcript's finals read as text.
ACCEPTS = {TEXT: {TEXT, TRANSCRIPT}, AUDIO: {AUDIO}, EMBEDDING: {EMBEDDING}, TENSOR: {TENSOR}}
STEP_ID = re.compile(r"^[a-z][a-z0-9_]*$")
TTS = "speechmesh.tts.v1.TextToSpeech"
INDEX_TTS = "speechmesh.indextts.v1.IndexTTS"


@dataclass(frozen=True)
class InputSpec:
    kinds: frozenset[int]
    required: bool = True
    whole: bool = False
    """The step needs the whole value before it starts (else it streams the input)."""


@dataclass(frozen=True)
class OpSpec:
    services: tuple[str, ...]
    inputs: dict[str, InputSpec]
    outputs: dict[str, int]
    params: tuple[str, ...] = ()


def _in(*kinds: int, required: bool = True, whole: bool = False) -> InputSpec:
    return InputSpec(frozenset(kinds), required, whole)


OPS: dict[int, OpSpec] = {
    pb.OP_EMBED: OpSpec(
        ("speechmesh.conversion.v1.SpeakerEncoder",),
        {"audio": _in(AUDIO, whole=True), "segments": _in(SEGMENTS, required=False, whole=True)},
        {"embedding": EMBEDDING},
        ("embed",),
    ),
    pb.OP_SYNTHESIZE: OpSpec(
        (TTS, INDEX_TTS),
        {
            "text": _in(TEXT),
            "embedding": _in(EMBEDDING, required=False, whole=True),
            "reference": _in(AUDIO, required=False, whole=True),
            "emotion": _in(AUDIO, required=False, whole=True),
        },
        {"audio": AUDIO},
        ("synthesis", "index_tts"),
    ),
    pb.OP_SYNTHESIZE_SPECTROGRAM: OpSpec(
        (TTS,),
        {"text": _in(TEXT), "embedding": _in(EMBEDDING, required=False, whole=True)},
        {"mel": TENSOR},
        ("synthesis",),
    ),
    pb.OP_VOCODE: OpSpec(("speechmesh.tts.v1.Vocoder",), {"mel": _in(TENSOR)}, {"audio": AUDIO}),
    pb.OP_TONE_CONVERT: OpSpec(
        ("speechmesh.conversion.v1.VoiceConversion",),
        {
            "audio": _in(AUDIO),
            "target": _in(EMBEDDING, AUDIO, whole=True),
            "source_embedding": _in(EMBEDDING, required=False, whole=True),
        },
        {"audio": AUDIO},
        ("conversion",),
    ),
    pb.OP_RESTORE: OpSpec(
        ("speechmesh.conversion.v1.AudioRestoration",),
        {"audio": _in(AUDIO)},
        {"audio": AUDIO},
        ("restoration",),
    ),
    pb.OP_DETECT: OpSpec(
        ("speechmesh.vad.v1.VoiceActivity",),
        {"audio": _in(AUDIO)},
        {"segments": SEGMENTS},
        ("vad",),
    ),
    pb.OP_TRANSCRIBE: OpSpec(
        ("speechmesh.stt.v1.SpeechToText",),
        {"audio": _in(AUDIO)},
        {"transcript": TRANSCRIPT},
        ("recognition",),
    ),
}
VALUE_KINDS = {"text": TEXT, "audio": AUDIO, "embedding": EMBEDDING, "tensor": TENSOR}


@dataclass(frozen=True)
class Source:
    """Where an input comes from: a graph input ($name) or a step's output."""

    step: str | None
    name: str

    @property
    def key(self) -> str:
        return f"${self.name}" if self.step is None else f"{self.step}.{self.name}"


@dataclass
class Plan:
    """A validated graph: steps in an order where every step follows its inputs."""

    graph: pb.Graph
    order: list[pb.Step]
    sources: dict[str, dict[str, Source]]  # step id → input name → source
    inputs: dict[str, int]  # graph input name → kind
    required_inputs: set[str] = field(default_factory=set)
    models: dict[str, models_pb2.ModelInfo] = field(default_factory=dict)  # step id → model


def parse_source(reference: str, field_name: str) -> Source:
    if reference.startswith("$") and len(reference) > 1:
        return Source(None, reference[1:])
    step, dot, name = reference.partition(".")
    if not dot or not step or not name:
        raise InvalidArgument(
            field_name, f"{reference!r} is neither '$<graph input>' nor '<step_id>.<output>'"
        )
    return Source(step, name)


def load_named_graphs(raw: dict[str, dict]) -> dict[str, pb.Graph]:
    """Graphs from the config, parsed (their models are checked at run time)."""
    graphs = {}
    for name, body in raw.items():
        try:
            graph = json_format.ParseDict({"name": name, **body}, pb.Graph())
        except json_format.ParseError as error:
            raise ConfigError(f"gateway.graphs.{name}: {error}") from None
        graphs[name] = graph
    return graphs


def validate(
    graph: pb.Graph,
    find_model: Callable[[str, tuple[str, ...]], models_pb2.ModelInfo | None],
    field_name: str = "inline_graph",
) -> Plan:
    """The graph's plan, or INVALID_ARGUMENT naming what is wrong.

    find_model(model_id, services) returns the model if the mesh has it for one of the
    services (a default model when model_id is empty), else None. Whether a model can
    use another's speaker embeddings comes from their ModelInfo (embedding_family,
    accepted_embedding_families), as each family declares it.
    """
    if not graph.steps:
        raise InvalidArgument(f"{field_name}.steps", "a graph needs at least one step")
    steps: dict[str, pb.Step] = {}
    for index, step in enumerate(graph.steps):
        where = f"{field_name}.steps[{index}]"
        if not STEP_ID.fullmatch(step.id):
            raise InvalidArgument(f"{where}.id", f"{step.id!r} must match {STEP_ID.pattern}")
        if step.id in steps:
            raise InvalidArgument(f"{where}.id", f"step id {step.id!r} appears twice")
        steps[step.id] = step
    plan = Plan(graph, [], {}, {})
    declared = {i.name: i for i in graph.inputs}
    for index, step in enumerate(graph.steps):
        where = f"{field_name}.steps[{index}]"
        spec = OPS.get(step.op)
        if spec is None:
            raise InvalidArgument(f"{where}.op", f"step {step.id!r}: unknown op {step.op}")
        params = step.WhichOneof("params")
        if params is not None and params not in spec.params:
            allowed = ", ".join(spec.params) or "none"
            raise InvalidArgument(
                f"{where}.{params}",
                f"step {step.id!r}: {pb.Op.Name(step.op)} takes params {allowed}, not {params}",
            )
        model = find_model(step.model, spec.services)
        if model is None:
            what = f"model {step.model!r}" if step.model else "a default model"
            raise InvalidArgument(
                f"{where}.model",
                f"step {step.id!r}: {what} for {pb.Op.Name(step.op)} is not in the mesh "
                f"(it must be a model of {' or '.join(spec.services)})",
            )
        plan.models[step.id] = model
        sources: dict[str, Source] = {}
        for name, reference in step.inputs.items():
            input_field = f"{where}.inputs[{name}]"
            if name not in spec.inputs:
                known = ", ".join(spec.inputs)
                raise InvalidArgument(
                    input_field,
                    f"step {step.id!r}: {pb.Op.Name(step.op)} has no input {name!r} "
                    f"(inputs: {known})",
                )
            sources[name] = parse_source(reference, input_field)
        for name, input_spec in spec.inputs.items():
            if input_spec.required and name not in sources:
                raise InvalidArgument(
                    f"{where}.inputs", f"step {step.id!r}: required input {name!r} is not wired"
                )
        if step.source_voice and (step.op != pb.OP_TONE_CONVERT or "source_embedding" in sources):
            raise InvalidArgument(
                f"{where}.source_voice",
                f"step {step.id!r}: source_voice is for OP_TONE_CONVERT without a "
                "source_embedding input",
            )
        if params == "embed":
            _check_embed_options(step, "segments" in sources, f"{where}.embed.piece_seconds")
        plan.sources[step.id] = sources
    for index, step in enumerate(graph.steps):
        where = f"{field_name}.steps[{index}]"
        spec = OPS[step.op]
        for name, source in plan.sources[step.id].items():
            wanted = spec.inputs[name].kinds
            input_field = f"{where}.inputs[{name}]"
            if source.step is None:
                kind = _graph_input_kind(declared, source.name, wanted, input_field, step.id)
                plan.inputs.setdefault(source.name, kind)
                if source.name not in declared or declared[source.name].required:
                    plan.required_inputs.add(source.name)
                continue
            producer = steps.get(source.step)
            if producer is None:
                raise InvalidArgument(
                    input_field, f"step {step.id!r}: no step {source.step!r} in the graph"
                )
            made = OPS[producer.op].outputs.get(source.name)
            if made is None:
                raise InvalidArgument(
                    input_field,
                    f"step {step.id!r}: step {source.step!r} has no output {source.name!r} "
                    f"(outputs: {', '.join(OPS[producer.op].outputs)})",
                )
            if not any(made in ACCEPTS.get(k, {k}) for k in wanted):
                raise InvalidArgument(
                    input_field,
                    f"step {step.id!r}: input {name!r} takes "
                    f"{' or '.join(_kind(k) for k in sorted(wanted))}, but {source.key} is "
                    f"{_kind(made)}",
                )
            if made == EMBEDDING:
                _check_embedding_family(
                    plan.models[producer.id], plan.models[step.id], input_field, step.id
                )
    plan.order = _topological(graph, plan.sources, field_name)
    if not graph.outputs:
        raise InvalidArgument(f"{field_name}.outputs", "a graph needs at least one output")
    for index, reference in enumerate(graph.outputs):
        source = parse_source(reference, f"{field_name}.outputs[{index}]")
        if source.step not in steps or source.name not in OPS[steps[source.step].op].outputs:
            raise InvalidArgument(
                f"{field_name}.outputs[{index}]", f"{reference!r} is not an output of a step"
            )
    return plan


def unbounded_inputs(plan: Plan) -> set[tuple[str, str]]:
    """The (step id, input) pairs whose queue must not be bounded.

    A whole input is held complete anyway. A streamed input is bounded unless it shares
    an upstream step with a whole input of the same step: that step reads nothing of
    the stream until the whole value is complete, and the common producer, blocked on
    the full stream queue, would never complete it.
    """
    upstream: dict[str, set[str]] = {}  # step id → every step it reads from, transitively
    for step in plan.order:
        above: set[str] = set()
        for source in plan.sources[step.id].values():
            if source.step is not None:
                above |= {source.step, *upstream[source.step]}
        upstream[step.id] = above

    def producers(source: Source) -> set[str]:
        return set() if source.step is None else {source.step, *upstream[source.step]}

    unbounded: set[tuple[str, str]] = set()
    for step in plan.order:
        specs = OPS[step.op].inputs
        sources = plan.sources[step.id]
        wholes = [name for name in sources if specs[name].whole]
        held = set().union(*(producers(sources[name]) for name in wholes))
        unbounded |= {(step.id, name) for name in wholes}
        unbounded |= {
            (step.id, name)
            for name, source in sources.items()
            if name not in wholes and producers(source) & held
        }
    return unbounded


def _graph_input_kind(declared, name: str, wanted, input_field: str, step_id: str) -> int:
    if name not in declared:
        # Inferred inputs take the first kind the consumer accepts.
        return min(wanted)
    kind = declared[name].kind
    if kind not in wanted and not any(kind in ACCEPTS.get(k, {k}) for k in wanted):
        raise InvalidArgument(
            input_field,
            f"step {step_id!r}: graph input ${name} is {_kind(kind)}, but the input takes "
            f"{' or '.join(_kind(k) for k in sorted(wanted))}",
        )
    return kind


def _check_embed_options(step: pb.Step, has_segments: bool, field_name: str) -> None:
    if not step.embed.HasField("piece_seconds"):
        return
    if not has_segments:
        raise InvalidArgument(
            field_name, f"step {step.id!r}: piece_seconds cuts speech, so needs a segments input"
        )
    seconds = step.embed.piece_seconds
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidArgument(
            field_name, f"step {step.id!r}: piece_seconds must be above 0, not {seconds}"
        )


def _check_embedding_family(
    producer: models_pb2.ModelInfo,
    consumer: models_pb2.ModelInfo,
    input_field: str,
    step_id: str,
) -> None:
    accepted = consumer.accepted_embedding_families
    if producer.embedding_family not in accepted:
        takes = ", ".join(sorted(accepted)) or "none"
        made = producer.embedding_family or "none"
        raise InvalidArgument(
            input_field,
            f"step {step_id!r}: model {consumer.id!r} ({consumer.family}) cannot use an "
            f"embedding made by {producer.id!r} ({producer.family}); it takes {takes} "
            f"embeddings, not {made}",
        )


def _topological(
    graph: pb.Graph, sources: dict[str, dict[str, Source]], field_name: str
) -> list[pb.Step]:
    by_id = {s.id: s for s in graph.steps}
    needs = {s.id: {src.step for src in sources[s.id].values() if src.step} for s in graph.steps}
    order: list[pb.Step] = []
    ready = [sid for sid, deps in needs.items() if not deps]
    while ready:
        sid = ready.pop(0)
        order.append(by_id[sid])
        for other, deps in needs.items():
            if sid in deps:
                deps.discard(sid)
                if not deps and by_id[other] not in order and other not in ready:
                    ready.append(other)
    if len(order) != len(graph.steps):
        stuck = sorted(set(by_id) - {s.id for s in order})
        raise InvalidArgument(f"{field_name}.steps", f"the steps {stuck} form a cycle")
    return order


def _kind(kind: int) -> str:
    return pb.ValueKind.Name(kind).removeprefix("VALUE_KIND_")
