"""The clone-voice graph through a real gateway: GE2E (resemblyzer's weights) on a
conversion server, tiny random HarmonySpeech V1 checkpoints on a TTS server."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from harmonyspeech_checkpoint import save_snapshot
from support import RunningServer, gateway_config, piper_speech, start_server, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("clone-voice")
TEXT = "Hello there. How are you today? Fine, thanks."
CLONE_VOICE = {
    "description": "Speak text in the voice of a reference recording.",
    "steps": [
        {"id": "embed", "op": "OP_EMBED", "model": "ge2e", "inputs": {"audio": "$reference"}},
        {
            "id": "synth",
            "op": "OP_SYNTHESIZE_SPECTROGRAM",
            "model": "harmony-synth",
            "inputs": {"text": "$text", "embedding": "embed.embedding"},
        },
        {
            "id": "vocode",
            "op": "OP_VOCODE",
            "model": "harmony-vocoder",
            "inputs": {"mel": "synth.mel"},
        },
    ],
    "outputs": ["vocode.audio"],
}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory):
    root = save_snapshot(tmp_path_factory.mktemp("clone") / "harmony-speech-v1", speaker_dims=256)
    tts_models = [
        {"id": "harmony-synth", "family": "harmonyspeech-synthesizer", "source": str(root)},
        {"id": "harmony-vocoder", "family": "harmonyspeech-vocoder", "source": str(root)},
    ]
    tts = start_server(
        "tts",
        {"services": {"tts": {"port": 0, "models": tts_models}}, "drain_grace_s": 5},
        tmp_path_factory.mktemp("clone-tts"),
    )
    conversion_models = [{"id": "ge2e", "family": "ge2e-resemblyzer"}]
    conversion = start_server(
        "conversion",
        {"services": {"conversion": {"port": 0, "models": conversion_models}}, "drain_grace_s": 5},
        tmp_path_factory.mktemp("clone-conversion"),
    )
    config = gateway_config({"tts": tts.address, "conversion": conversion.address})
    config["gateway"]["graphs"] = {"clone-voice": CLONE_VOICE}
    gateway = start_server("gateway", config, tmp_path_factory.mktemp("clone-gateway"))

    def routes_all() -> bool:
        with gateway.channel() as channel:
            listed = models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest(), timeout=5
            )
        return {"ge2e", "harmony-synth", "harmony-vocoder"} <= {m.id for m in listed.models}

    wait_until(routes_all)
    yield gateway, tts
    for server in (gateway, conversion, tts):
        server.stop()


def _reference() -> audio_pb2.Audio:
    speech, rate = piper_speech()
    fmt = audio_pb2.AudioFormat(
        encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=rate, channels=1
    )
    return audio_pb2.Audio(format=fmt, data=speech.astype("<f4").tobytes())


def _run(gateway: RunningServer, text: str = TEXT, graph: str = "clone-voice"):
    request = pb.RunGraphRequest(
        graph_name=graph,
        inputs={"text": pb.Value(text=text), "reference": pb.Value(audio=_reference())},
        output_format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE),
    )
    with gateway.channel() as channel:
        return list(orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(request, timeout=120))


def test_clone_voice_streams_each_sentence_as_the_direct_calls_make_it(mesh):
    """The graph's validation accepts GE2E embeddings for the synthesizer; its audio is
    the direct calls' audio, sentence by sentence, the first before vocoding ends."""
    gateway, _ = mesh
    responses = _run(gateway)
    kinds = [r.WhichOneof("response") for r in responses]
    pieces = [
        r.output
        for r, kind in zip(responses, kinds, strict=True)
        if kind == "output" and r.output.HasField("audio") and r.output.audio.data
    ]
    assert kinds[-1] == "summary"
    assert {p.format.sample_rate_hz for p in pieces} == {16000}
    audio = np.frombuffer(b"".join(p.audio.data for p in pieces), "<f4")
    vocode_done = next(
        i
        for i, r in enumerate(responses)
        if kinds[i] == "step_event"
        and r.step_event.step_id == "vocode"
        and r.step_event.type == pb.STEP_EVENT_TYPE_FINISHED
    )
    first_audio = kinds.index("output")
    assert first_audio < vocode_done

    # The same chain called directly, sentence by sentence, with the gateway's embedding.
    with gateway.channel() as channel:
        embedding = _embedding(channel)
        tts = tts_pb2_grpc.TextToSpeechStub(channel)
        vocoder = tts_pb2_grpc.VocoderStub(channel)
        direct = []
        for sentence in ("Hello there.", "How are you today?", "Fine, thanks."):
            mel = tts.SynthesizeSpectrogram(
                tts_pb2.SynthesizeSpectrogramRequest(
                    model="harmony-synth",
                    text=sentence,
                    options=tts_pb2.SynthesisOptions(speaker_embedding=embedding),
                ),
                timeout=60,
            ).mel
            direct.append(
                vocoder.Vocode(
                    tts_pb2.VocodeRequest(
                        model="harmony-vocoder",
                        mel=mel,
                        output_format=audio_pb2.AudioFormat(
                            encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE
                        ),
                    ),
                    timeout=60,
                )
            )
    expected = np.concatenate([np.frombuffer(v.audio.data, "<f4") for v in direct])
    assert embedding.model_family == "ge2e-resemblyzer" and len(embedding.values) == 256
    assert len(audio) == len(expected) == sum(v.total_samples for v in direct)
    np.testing.assert_allclose(audio, expected, atol=1e-5)
    assert len(pieces) >= 3  # at least one piece per sentence


def _embedding(channel: grpc.Channel) -> audio_pb2.SpeakerEmbedding:
    from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

    speech, rate = piper_speech()
    clip = audio_pb2.Audio(
        format=audio_pb2.AudioFormat(
            encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=rate, channels=1
        ),
        data=speech.astype("<f4").tobytes(),
    )
    response = conversion_pb2_grpc.SpeakerEncoderStub(channel).Embed(
        conversion_pb2.EmbedRequest(model="ge2e", clips=[clip]), timeout=60
    )
    return response.embedding
