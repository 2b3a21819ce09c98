"""Graphs and chained calls through the gateway, on the real Piper voice and whisper."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from support import SENTENCES, word_error_rate

from speechmesh.audio.v1 import audio_pb2
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

TEXT = ". ".join(SENTENCES[:3]) + "."


def run_graph(gateway, request, **kwargs):
    with gateway.channel() as channel:
        return list(orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(request, **kwargs))


def test_tts_to_stt_round_trip_through_the_gateway(gateway):
    with gateway.channel() as channel:
        spoken = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
            tts_pb2.SynthesizeRequest(
                text=SENTENCES[2],
                output_format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV),
            ),
            timeout=60,
        )
        heard = stt_pb2_grpc.SpeechToTextStub(channel).Recognize(
            stt_pb2.RecognizeRequest(audio=spoken.audio), timeout=60
        )
    assert word_error_rate(SENTENCES[2], heard.text) <= 0.15, heard.text


def test_a_graph_streams_audio_before_its_last_step_finishes(gateway):
    responses = run_graph(
        gateway,
        pb.RunGraphRequest(
            graph_name="round-trip",
            inputs={"text": pb.Value(text=TEXT)},
            output_format=audio_pb2.AudioFormat(
                encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
            ),
        ),
        timeout=120,
    )
    kinds = [r.WhichOneof("response") for r in responses]
    first_audio = next(
        i for i, r in enumerate(responses) if kinds[i] == "output" and r.output.HasField("audio")
    )
    stt_finished = next(
        i
        for i, r in enumerate(responses)
        if kinds[i] == "step_event"
        and r.step_event.step_id == "stt"
        and r.step_event.type == pb.STEP_EVENT_TYPE_FINISHED
    )
    tts_finished = next(
        i
        for i, r in enumerate(responses)
        if kinds[i] == "step_event"
        and r.step_event.step_id == "tts"
        and r.step_event.type == pb.STEP_EVENT_TYPE_FINISHED
    )
    assert first_audio < tts_finished < stt_finished
    audio = [r.output for r in responses if kinds[responses.index(r)] == "output"]
    pieces = [o for o in audio if o.name == "tts.audio" and o.HasField("audio")]
    assert len(pieces) >= 3  # sentence by sentence
    offsets = [p.audio.sample_offset for p in pieces]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert all(p.format.sample_rate_hz == 16000 for p in pieces)
    total = sum(len(p.audio.data) // 2 for p in pieces)
    transcript = " ".join(
        o.transcript.alternatives[0].transcript
        for o in audio
        if o.name == "stt.transcript" and o.HasField("transcript")
    )
    assert word_error_rate(TEXT, transcript) <= 0.2, transcript
    summary = responses[-1].summary
    assert kinds[-1] == "summary" and summary.graph_name == "round-trip"
    by_name = {o.name: o for o in summary.outputs}
    assert by_name["tts.audio"].total_samples == total
    assert by_name["tts.audio"].sample_rate_hz == 16000
    events = [r.step_event for r in responses if kinds[responses.index(r)] == "step_event"]
    assert {(e.step_id, e.type) for e in events} >= {
        ("tts", pb.STEP_EVENT_TYPE_STARTED),
        ("tts", pb.STEP_EVENT_TYPE_FIRST_OUTPUT),
        ("stt", pb.STEP_EVENT_TYPE_FINISHED),
    }
    assert np.all(np.diff([e.elapsed_ms for e in events]) >= -1e-6)


def test_invalid_graphs_and_failed_steps_are_named(gateway):
    inline = json_format.ParseDict(
        {
            "steps": [
                {"id": "mel", "op": "OP_SYNTHESIZE_SPECTROGRAM", "inputs": {"text": "$text"}},
                {"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "mel.mel"}},
            ],
            "outputs": ["stt.transcript"],
        },
        pb.Graph(),
    )
    with pytest.raises(grpc.RpcError) as raised:
        run_graph(gateway, pb.RunGraphRequest(inline_graph=inline, inputs={}))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inline_graph.steps[1].inputs[audio]" in raised.value.details()

    with pytest.raises(grpc.RpcError) as raised:
        run_graph(gateway, pb.RunGraphRequest(graph_name="nope"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "round-trip" in raised.value.details()

    with pytest.raises(grpc.RpcError) as raised:
        run_graph(gateway, pb.RunGraphRequest(graph_name="round-trip"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inputs[text]" in raised.value.details()

    voice = json_format.ParseDict(
        {
            "steps": [
                {
                    "id": "speak",
                    "op": "OP_SYNTHESIZE",
                    "inputs": {"text": "$text"},
                    "synthesis": {"voice": "nobody"},
                }
            ],
            "outputs": ["speak.audio"],
        },
        pb.Graph(),
    )
    with pytest.raises(grpc.RpcError) as raised:
        run_graph(
            gateway, pb.RunGraphRequest(inline_graph=voice, inputs={"text": pb.Value(text="Hi.")})
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "step 'speak' failed" in raised.value.details()


def test_noisy_speech_is_restored_then_transcribed(gateway):
    from support import pcm16, piper_say

    speech, rate = piper_say(SENTENCES[1])
    gap = np.zeros(rate // 2, np.float32)
    clean = np.concatenate([gap, speech, gap])
    noise = np.random.default_rng(11).standard_normal(len(clean)).astype(np.float32)
    noisy = clean + noise * (np.std(speech) / np.sqrt(10 ** (10 / 10)))  # 10 dB SNR
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate)
    responses = run_graph(
        gateway,
        pb.RunGraphRequest(
            graph_name="clean-transcribe",
            inputs={"audio": pb.Value(audio=audio_pb2.Audio(format=fmt, data=pcm16(noisy)))},
        ),
        timeout=120,
    )
    outputs = [r.output for r in responses if r.WhichOneof("response") == "output"]
    transcript = " ".join(
        o.transcript.alternatives[0].transcript for o in outputs if o.HasField("transcript")
    )
    assert word_error_rate(SENTENCES[1], transcript) <= 0.2, transcript
    restored = [o for o in outputs if o.name == "clean.audio" and o.HasField("audio")]
    summary = {o.name: o for o in responses[-1].summary.outputs}["clean.audio"]
    assert restored and summary.total_samples == sum(len(o.audio.data) // 2 for o in restored)
    # The restorer's output covers the whole input, at the rate it made.
    assert abs(summary.total_samples / summary.sample_rate_hz - len(noisy) / rate) < 0.05
