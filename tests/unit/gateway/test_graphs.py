"""Graph validation names the step and input at fault, before anything runs."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from speechmesh.gateway.graphs import OPS, unbounded_inputs, validate
from speechmesh.models.v1 import models_pb2
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.runtime import registry
from speechmesh.runtime.errors import InvalidArgument

MODELS = {
    "whisper": ("faster-whisper", "speechmesh.stt.v1.SpeechToText"),
    "silero": ("silero-vad", "speechmesh.vad.v1.VoiceActivity"),
    "piper": ("piper", "speechmesh.tts.v1.TextToSpeech"),
    "harmony": ("harmonyspeech-synthesizer", "speechmesh.tts.v1.TextToSpeech"),
    "melgan": ("harmonyspeech-vocoder", "speechmesh.tts.v1.Vocoder"),
    "ge2e": ("ge2e-resemblyzer", "speechmesh.conversion.v1.SpeakerEncoder"),
    "openvoice-enc": ("openvoice-v2", "speechmesh.conversion.v1.SpeakerEncoder"),
    "openvoice-conv": ("openvoice-v2", "speechmesh.conversion.v1.VoiceConversion"),
    "rnnoise": ("rnnoise", "speechmesh.conversion.v1.AudioRestoration"),
}


def find_model(model_id, services):
    for name, (family, service) in MODELS.items():
        if (model_id in ("", name)) and service in services:
            # The embedding facts as the family declares them, as its server reports them.
            engine = registry.engine_class(family)
            return models_pb2.ModelInfo(
                id=name,
                family=family,
                service=service,
                embedding_family=engine.embedding_family,
                accepted_embedding_families=engine.accepted_embedding_families,
            )
    return None


def graph(steps, outputs, inputs=()):
    return json_format.ParseDict(
        {"steps": steps, "outputs": outputs, "inputs": list(inputs)}, pb.Graph()
    )


def check(g):
    return validate(g, find_model)


def invalid(g) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as raised:
        check(g)
    return raised.value


def test_a_clone_voice_graph_is_planned_in_dependency_order():
    plan = check(
        graph(
            [
                {
                    "id": "vocode",
                    "op": "OP_VOCODE",
                    "model": "melgan",
                    "inputs": {"mel": "synth.mel"},
                },
                {
                    "id": "synth",
                    "op": "OP_SYNTHESIZE_SPECTROGRAM",
                    "model": "harmony",
                    "inputs": {"text": "$text", "embedding": "embed.embedding"},
                },
                {
                    "id": "embed",
                    "op": "OP_EMBED",
                    "model": "ge2e",
                    "inputs": {"audio": "$reference"},
                },
            ],
            ["vocode.audio"],
        )
    )
    assert [s.id for s in plan.order] == ["embed", "synth", "vocode"]
    assert plan.inputs == {"text": pb.VALUE_KIND_TEXT, "reference": pb.VALUE_KIND_AUDIO}
    assert plan.required_inputs == {"text", "reference"}


def test_a_transcript_feeds_a_text_input():
    check(
        graph(
            [
                {"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "$audio"}},
                {
                    "id": "tts",
                    "op": "OP_SYNTHESIZE",
                    "model": "piper",
                    "inputs": {"text": "stt.transcript"},
                },
            ],
            ["tts.audio"],
        )
    )


@pytest.mark.parametrize(
    ("steps", "outputs", "field", "words"),
    [
        ([{"id": "x", "op": "OP_UNSPECIFIED"}], ["x.audio"], "steps[0].op", "unknown op"),
        (
            [{"id": "x", "op": "OP_TRANSCRIBE", "model": "nope", "inputs": {"audio": "$a"}}],
            ["x.transcript"],
            "steps[0].model",
            "'nope'",
        ),
        (
            [{"id": "x", "op": "OP_TRANSCRIBE", "model": "piper", "inputs": {"audio": "$a"}}],
            ["x.transcript"],
            "steps[0].model",
            "SpeechToText",
        ),
        ([{"id": "x", "op": "OP_TRANSCRIBE"}], ["x.transcript"], "steps[0].inputs", "'audio'"),
        (
            [{"id": "x", "op": "OP_TRANSCRIBE", "inputs": {"audio": "$a", "video": "$v"}}],
            ["x.transcript"],
            "steps[0].inputs[video]",
            "no input 'video'",
        ),
        (
            [
                {
                    "id": "mel",
                    "op": "OP_SYNTHESIZE_SPECTROGRAM",
                    "model": "harmony",
                    "inputs": {"text": "$t"},
                },
                {"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "mel.mel"}},
            ],
            ["stt.transcript"],
            "steps[1].inputs[audio]",
            "takes AUDIO, but mel.mel is TENSOR",
        ),
        (
            [
                {
                    "id": "enc",
                    "op": "OP_EMBED",
                    "model": "openvoice-enc",
                    "inputs": {"audio": "$ref"},
                },
                {
                    "id": "mel",
                    "op": "OP_SYNTHESIZE_SPECTROGRAM",
                    "model": "harmony",
                    "inputs": {"text": "$t", "embedding": "enc.embedding"},
                },
            ],
            ["mel.mel"],
            "steps[1].inputs[embedding]",
            "cannot use an embedding made by 'openvoice-enc' (openvoice-v2)",
        ),
        (
            [
                {"id": "a", "op": "OP_RESTORE", "inputs": {"audio": "b.audio"}},
                {"id": "b", "op": "OP_RESTORE", "inputs": {"audio": "a.audio"}},
            ],
            ["a.audio"],
            "steps",
            "cycle",
        ),
        (
            [{"id": "a", "op": "OP_RESTORE", "inputs": {"audio": "ghost.audio"}}],
            ["a.audio"],
            "steps[0].inputs[audio]",
            "no step 'ghost'",
        ),
        (
            [{"id": "a", "op": "OP_RESTORE", "inputs": {"audio": "$x"}}],
            ["a.transcript"],
            "outputs[0]",
            "not an output",
        ),
        (
            [{"id": "a", "op": "OP_RESTORE", "inputs": {"audio": "$x"}, "vad": {}}],
            ["a.audio"],
            "steps[0].vad",
            "takes params restoration",
        ),
        (
            [{"id": "A", "op": "OP_RESTORE", "inputs": {"audio": "$x"}}],
            ["A.audio"],
            "steps[0].id",
            "must match",
        ),
    ],
)
def test_invalid_graphs_name_the_step_and_input(steps, outputs, field, words):
    error = invalid(graph(steps, outputs))
    assert error.violations[0].field == f"inline_graph.{field}"
    assert words in str(error)


def test_a_source_voice_is_for_a_tone_conversion_without_a_source_embedding():
    synth = {"id": "tts", "op": "OP_SYNTHESIZE", "model": "piper", "inputs": {"text": "$t"}}
    convert = {
        "id": "convert",
        "op": "OP_TONE_CONVERT",
        "model": "openvoice-conv",
        "inputs": {"audio": "tts.audio", "target": "$reference"},
        "source_voice": "en-us",
    }
    assert [s.id for s in check(graph([synth, convert], ["convert.audio"])).order] == [
        "tts",
        "convert",
    ]
    on_synthesis = invalid(graph([{**synth, "source_voice": "en-us"}], ["tts.audio"]))
    assert on_synthesis.violations[0].field == "inline_graph.steps[0].source_voice"
    both = {**convert, "inputs": {**convert["inputs"], "source_embedding": "$source"}}
    refused = invalid(graph([synth, both], ["convert.audio"]))
    assert refused.violations[0].field == "inline_graph.steps[1].source_voice"
    assert "without a source_embedding input" in str(refused)


def test_a_declared_input_of_the_wrong_kind_is_refused():
    error = invalid(
        graph(
            [{"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "$audio"}}],
            ["stt.transcript"],
            [{"name": "audio", "kind": "VALUE_KIND_TEXT"}],
        )
    )
    assert "graph input $audio is TEXT" in str(error)


def test_every_op_has_a_runner():
    from speechmesh.gateway.steps import STEP_RUNNERS

    assert set(STEP_RUNNERS) == set(OPS)


def test_streamed_inputs_are_bounded_unless_a_whole_input_shares_their_producer():
    plan = check(
        graph(
            [
                {"id": "first", "op": "OP_SYNTHESIZE", "inputs": {"text": "$text"}},
                {"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "first.audio"}},
                {"id": "clean", "op": "OP_RESTORE", "inputs": {"audio": "first.audio"}},
                {
                    "id": "again",
                    "op": "OP_SYNTHESIZE",
                    "inputs": {"text": "stt.transcript", "reference": "first.audio"},
                },
            ],
            ["again.audio", "clean.audio"],
        )
    )
    # `again` reads nothing of the transcript before its reference is whole; both come
    # from `first`, which a bounded transcript queue would block forever.
    assert unbounded_inputs(plan) == {("again", "reference"), ("again", "text")}


DETECT = {"id": "speech", "op": "OP_DETECT", "model": "silero", "inputs": {"audio": "$reference"}}
EMBED = {"id": "embed", "op": "OP_EMBED", "model": "openvoice-enc"}


def test_an_embedding_of_the_speech_reads_the_detected_segments_whole():
    embed = {**EMBED, "inputs": {"audio": "$reference", "segments": "speech.segments"}}
    plan = check(graph([embed, DETECT], ["embed.embedding"]))
    assert [s.id for s in plan.order] == ["speech", "embed"]
    assert unbounded_inputs(plan) == {("embed", "audio"), ("embed", "segments")}


@pytest.mark.parametrize(
    ("inputs", "options", "field", "words"),
    [
        (
            {"audio": "$reference", "segments": "speech.audio"},
            {},
            "steps[0].inputs[segments]",
            "no output 'audio'",
        ),
        (
            {"audio": "$reference", "segments": "clean.audio"},
            {},
            "steps[0].inputs[segments]",
            "takes SEGMENTS, but clean.audio is AUDIO",
        ),
        (
            {"audio": "$reference"},
            {"piece_seconds": 5.0},
            "steps[0].embed.piece_seconds",
            "needs a segments input",
        ),
        (
            {"audio": "$reference", "segments": "speech.segments"},
            {"piece_seconds": 0.0},
            "steps[0].embed.piece_seconds",
            "must be above 0",
        ),
        (
            {"audio": "$reference", "segments": "speech.segments"},
            {"piece_seconds": "NaN"},
            "steps[0].embed.piece_seconds",
            "must be above 0",
        ),
    ],
    ids=["not-an-output", "not-segments", "pieces-without-segments", "zero", "nan"],
)
def test_a_bad_speech_cut_names_the_step(inputs, options, field, words):
    clean = {"id": "clean", "op": "OP_RESTORE", "inputs": {"audio": "$reference"}}
    embed = {**EMBED, "inputs": inputs, "embed": options}
    error = invalid(graph([embed, DETECT, clean], ["embed.embedding"]))
    assert error.violations[0].field == f"inline_graph.{field}"
    assert words in str(error)
