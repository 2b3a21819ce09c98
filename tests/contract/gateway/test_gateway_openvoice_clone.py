"""The openvoice-clone graph through a real gateway: an OpenVoice V1 base speaker (TTS
server) speaks, the OpenVoice V1 tone-colour converter (conversion server) moves its
voice to a reference recording's; tiny random checkpoints in the official layouts."""

from __future__ import annotations

import numpy as np
import pytest
from checkpoints import save_openvoice, save_openvoice_base
from support import gateway_config, start_server, stream_convert, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("openvoice-clone")
RATE = 16000  # both tiny models' rate
TEXT = "Hello there, my friend. OpenVoice speaks, and the converter listens."
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
# Slow enough that the converter can embed the source voice from the first second.
SYNTHESIS = {
    "voice": "cheerful",
    "language": "en",
    "speed": 0.25,
    "openvoice": {"noise_scale": 0.0},
}
OPENVOICE_CLONE = {
    "description": "Text spoken by an OpenVoice V1 base speaker in a reference's voice.",
    "steps": [
        {
            "id": "synth",
            "op": "OP_SYNTHESIZE",
            "model": "ov-base",
            "inputs": {"text": "$text"},
            "synthesis": {**SYNTHESIS, "seed": 3},
        },
        {
            "id": "convert",
            "op": "OP_TONE_CONVERT",
            "model": "ov-converter",
            "inputs": {"audio": "synth.audio", "target": "$reference"},
            "conversion": {"tau": 0.0},
        },
    ],
    "outputs": ["convert.audio"],
}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ov-clone")
    save_openvoice_base(root / "base", languages=("EN",))
    save_openvoice(root / "converter", version="v1")
    base = [{"id": "ov-base", "family": "openvoice-v1-base", "source": str(root / "base")}]
    tts = start_server(
        "tts",
        {"services": {"tts": {"port": 0, "models": base}}, "drain_grace_s": 5},
        tmp_path_factory.mktemp("ov-clone-tts"),
    )
    converter = [
        {"id": "ov-converter", "family": "openvoice-v1", "source": str(root / "converter")}
    ]
    conversion = start_server(
        "conversion",
        {"services": {"conversion": {"port": 0, "models": converter}}, "drain_grace_s": 5},
        tmp_path_factory.mktemp("ov-clone-conversion"),
    )
    config = gateway_config({"tts": tts.address, "conversion": conversion.address})
    config["gateway"]["graphs"] = {"openvoice-clone": OPENVOICE_CLONE}
    gateway = start_server("gateway", config, tmp_path_factory.mktemp("ov-clone-gateway"))

    def routes_all() -> bool:
        with gateway.channel() as channel:
            listed = models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest(), timeout=5
            )
        return {"ov-base", "ov-converter"} <= {m.id for m in listed.models}

    wait_until(routes_all)
    yield gateway, tts, conversion
    for server in (gateway, conversion, tts):
        server.stop()


def reference_clip() -> audio_pb2.Audio:
    t = np.arange(int(1.5 * RATE)) / RATE
    speech = 0.4 * np.sin(2 * np.pi * 170 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    noise = 0.02 * np.random.default_rng(0).standard_normal(len(t))
    data = (speech + noise).astype("<f4").tobytes()
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32.encoding, sample_rate_hz=RATE), data=data
    )


def test_openvoice_clone_is_synthesis_then_conversion_as_direct_calls_make_them(mesh):
    gateway, tts, conversion = mesh
    request = pb.RunGraphRequest(
        graph_name="openvoice-clone",
        inputs={"text": pb.Value(text=TEXT), "reference": pb.Value(audio=reference_clip())},
        output_format=F32,
    )
    with gateway.channel() as channel:
        responses = list(
            orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(request, timeout=120)
        )
    kinds = [r.WhichOneof("response") for r in responses]
    assert kinds[-1] == "summary", responses[-1]
    outputs = [r.output for r in responses if r.WhichOneof("response") == "output"]
    audio = np.frombuffer(b"".join(o.audio.data for o in outputs if o.HasField("audio")), "<f4")

    # The same chain called directly: base speech, the reference's embedding (the
    # converter embeds a target clip as Embed does), a stream conversion (its source
    # voice embedded from the stream's first window, as the graph's step leaves it).
    options = tts_pb2.SynthesisOptions(
        voice="cheerful",
        language="en",
        speed=0.25,
        seed=3,
        openvoice=tts_pb2.OpenVoiceOptions(noise_scale=0),
    )
    with tts.channel() as channel:
        spoken = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
            tts_pb2.SynthesizeRequest(
                model="ov-base", text=TEXT, options=options, output_format=F32
            ),
            timeout=60,
        )
    with conversion.channel() as channel:
        target = (
            conversion_pb2_grpc.SpeakerEncoderStub(channel)
            .Embed(
                conversion_pb2.EmbedRequest(model="ov-converter", clips=[reference_clip()]),
                timeout=60,
            )
            .embedding
        )
    config = conversion_pb2.StreamingConvertConfig(
        model="ov-converter",
        format=audio_pb2.AudioFormat(encoding=F32.encoding, sample_rate_hz=RATE),
        target_embedding=target,
        options=conversion_pb2.ConversionOptions(tau=0.0),
        output_format=F32,
    )
    converted = stream_convert(conversion, spoken.audio.data, config, chunk_bytes=4 * 4000)
    expected = np.frombuffer(
        b"".join(r.audio.data for r in converted if r.HasField("audio")), "<f4"
    )
    assert target.model_family == "openvoice-v1"
    assert len(expected) == len(np.frombuffer(spoken.audio.data, "<f4")) > 0
    assert len(audio) == len(expected)
    np.testing.assert_allclose(audio, expected, atol=1e-5)
