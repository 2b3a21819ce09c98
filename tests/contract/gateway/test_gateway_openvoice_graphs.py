"""The embedded config's openvoice-v1 and openvoice-v2 graphs through a real gateway.

With tiny random checkpoints in the official layouts under the embedded model ids (the
OpenVoice V1 base speakers, MeloTTS English from its parity run, both tone-colour
converters) and the real Silero VAD, each graph finds the speech of the reference,
embeds it with the converter, speaks with the base speaker and converts the speech,
streamed: the converter's stream opens before the base speaker has finished and its
audio comes in pieces, and it equals the same chain called directly. The reference's
embedding is that of its speech pieces (silence around it changes nothing; no speech is
refused). Without weights the embedded declarations leave their servers SERVING and the
graphs refused with the reason.
"""

from __future__ import annotations

import copy

import grpc
import numpy as np
import pytest
import torch
from checkpoints import save_openvoice, save_openvoice_base
from google.protobuf import json_format
from grpc_health.v1 import health_pb2
from parity.melotts_weights import rebuild_reference_model
from parity.support import ReferenceRun
from support import gateway_config, speech_in_silence, start_server, stream_convert, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.runtime.config import load_config
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

pytestmark = pytest.mark.xdist_group("openvoice-graphs")
RATE = 16000  # the tiny models' rate
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
TEXT = {
    "openvoice-v1": "Hello there, my friend. OpenVoice speaks, and the converter listens. "
    "A third sentence ends it.",
    "openvoice-v2": "Hello world. It costs five dollars, or three at most. Yes, no, maybe? "
    "A longer sentence goes on, doesn't it. The end comes, and then another sentence. "
    "Numbers like seven and forty two are read too.",
}
# Deterministic synthesis for the comparison with direct calls; slow, so that the
# converter has a second of source speech to embed early.
QUIET = {
    "openvoice-v1": {"speed": 0.25, "seed": 3, "openvoice": {"noise_scale": 0.0}},
    "openvoice-v2": {
        "speed": 0.25,
        "seed": 3,
        "melo_tts": {"noise_scale": 0.0, "noise_scale_w": 0.0},
    },
}
IDS = ("openvoice-base", "melotts-en", "openvoice-v1", "openvoice-v2")
NAMES = ("openvoice-v1", "openvoice-v2")
# Silence added around the reference: 96 of Silero's 512-sample windows, so the padded
# reference's windows fall on the same samples of the speech as the original's.
PAD = 96 * 512


def embedded_graphs() -> dict[str, dict]:
    return load_config().gateway.graphs


def start_mesh(folder, vad, tts_models: list[dict], conversion_models: list[dict]):
    tts = start_server(
        "tts",
        {"services": {"tts": {"port": 0, "models": tts_models}}, "drain_grace_s": 5},
        folder / "tts",
    )
    conversion = start_server(
        "conversion",
        {"services": {"conversion": {"port": 0, "models": conversion_models}}, "drain_grace_s": 5},
        folder / "conversion",
    )
    config = gateway_config(
        {"vad": vad.address, "tts": tts.address, "conversion": conversion.address}
    )
    config["gateway"]["graphs"] = embedded_graphs()
    gateway = start_server("gateway", config, folder / "gateway")

    def lists_all() -> bool:
        with gateway.channel() as channel:
            listed = models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest(), timeout=5
            )
        return set(IDS) <= {m.id for m in listed.models}

    wait_until(lists_all)
    return gateway, tts, conversion


@pytest.fixture(scope="module")
def mesh(vad_server, tmp_path_factory: pytest.TempPathFactory):
    try:
        melo = ReferenceRun("melotts")
    except FileNotFoundError:
        pytest.skip("no melotts fixtures")
    root = tmp_path_factory.mktemp("ov-graphs")
    for name in ("tts", "conversion", "gateway", "base", "v1", "v2", "melo"):
        (root / name).mkdir()
    save_openvoice_base(root / "base", languages=("EN",))
    save_openvoice(root / "v1", version="v1")
    save_openvoice(root / "v2", version="v2")
    # The official V2 snapshot's stored embedding of MeloTTS English's EN-US speaker.
    torch.save(torch.full((1, 8, 1), 3.0), root / "v2" / "base_speakers" / "ses" / "en-us.pth")
    melo_options = rebuild_reference_model(melo, root / "melo")
    tts_models = [
        {"id": "openvoice-base", "family": "openvoice-v1-base", "source": str(root / "base")},
        {
            "id": "melotts-en",
            "family": "melotts",
            "source": str(root / "melo" / "model"),
            "options": melo_options,
        },
    ]
    conversion_models = [
        {"id": "openvoice-v1", "family": "openvoice-v1", "source": str(root / "v1")},
        {"id": "openvoice-v2", "family": "openvoice-v2", "source": str(root / "v2")},
    ]
    servers = start_mesh(root, vad_server, tts_models, conversion_models)
    yield (*servers, vad_server)
    for server in servers:
        server.stop()


def reference_samples() -> np.ndarray:
    """Real speech: two sentences in quiet noise, 1.6 s apart (two VAD segments), with
    more than a second of silence after the last (so its segment ends before the end)."""
    return speech_in_silence([0.8, 1.6, 1.3], rate=RATE).audio


def quiet(samples: int, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(samples) * 1e-4).astype(np.float32)


def f32_audio(samples: np.ndarray) -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32.encoding, sample_rate_hz=RATE),
        data=samples.astype("<f4").tobytes(),
    )


def reference_clip() -> audio_pb2.Audio:
    return f32_audio(reference_samples())


def run_graph(
    gateway,
    name: str,
    graph: dict | None = None,
    text: str = "",
    reference: np.ndarray | None = None,
) -> list[pb.RunGraphResponse]:
    clip = reference_clip() if reference is None else f32_audio(reference)
    inputs = {"text": pb.Value(text=text or TEXT[name]), "reference": pb.Value(audio=clip)}
    fields = {"inputs": inputs, "output_format": F32}
    if graph is None:
        fields["graph_name"] = name
    else:
        fields["inline_graph"] = json_format.ParseDict({"name": name, **graph}, pb.Graph())
    with gateway.channel() as channel:
        return list(
            orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(
                pb.RunGraphRequest(**fields), timeout=180
            )
        )


def converted(responses) -> np.ndarray:
    outputs = [r.output for r in responses if r.WhichOneof("response") == "output"]
    return np.frombuffer(b"".join(o.audio.data for o in outputs if o.HasField("audio")), "<f4")


def step(graph: dict, step_id: str) -> dict:
    return next(s for s in graph["steps"] if s["id"] == step_id)


def detect(vad, samples: np.ndarray, options: dict) -> list[vad_pb2.SpeechSegment]:
    """VoiceActivity/Detect on the VAD server itself."""
    with vad.channel() as channel:
        return list(
            vad_pb2_grpc.VoiceActivityStub(channel)
            .Detect(
                vad_pb2.DetectRequest(
                    model="silero-vad",
                    audio=f32_audio(samples),
                    options=json_format.ParseDict(options, vad_pb2.VadOptions()),
                ),
                timeout=60,
            )
            .segments
        )


def speech_of(samples: np.ndarray, segments) -> np.ndarray:
    """The segments' audio joined, their ends at whole milliseconds (16 samples here)."""
    return np.concatenate([samples[int(s.start_ms) * 16 : int(s.end_ms) * 16] for s in segments])


def pieces_of(speech: np.ndarray, piece_seconds: float) -> list[np.ndarray]:
    """se_extractor.split_audio_vad's pieces: round(seconds / piece_seconds) of equal
    length (here at least one), the last to the end, cut at whole milliseconds."""
    seconds = len(speech) / RATE
    count = max(1, round(seconds / piece_seconds))
    pieces, start = [], 0.0
    for index in range(count):
        end = seconds if index == count - 1 else min(start + seconds / count, seconds)
        pieces.append(speech[int(start * 1000) * 16 : int(end * 1000) * 16])
        start = end
    return pieces


def embed(conversion, model: str, clips: list[np.ndarray]) -> np.ndarray:
    """SpeakerEncoder/Embed on the conversion server itself, the clips in one call."""
    with conversion.channel() as channel:
        response = conversion_pb2_grpc.SpeakerEncoderStub(channel).Embed(
            conversion_pb2.EmbedRequest(model=model, clips=[f32_audio(c) for c in clips]),
            timeout=60,
        )
    return np.array(response.embedding.values, np.float32)


def direct(tts, conversion, vad, name: str, graph: dict) -> tuple[np.ndarray, str]:
    """The graph's chain as direct calls: Detect, Embed of the speech, Synthesize,
    StreamingConvert."""
    synth, convert = step(graph, "synth"), step(graph, "convert")
    clip = reference_samples()
    speech = speech_of(clip, detect(vad, clip, step(graph, "speech")["vad"]))
    with conversion.channel() as channel:
        target = (
            conversion_pb2_grpc.SpeakerEncoderStub(channel)
            .Embed(
                conversion_pb2.EmbedRequest(
                    model=step(graph, "embed")["model"],
                    clips=[f32_audio(p) for p in pieces_of(speech, 10.0)],
                ),
                timeout=60,
            )
            .embedding
        )
    options = json_format.ParseDict(synth.get("synthesis", {}), tts_pb2.SynthesisOptions())
    with tts.channel() as channel:
        spoken = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
            tts_pb2.SynthesizeRequest(
                model=synth["model"], text=TEXT[name], options=options, output_format=F32
            ),
            timeout=120,
        )
    config = conversion_pb2.StreamingConvertConfig(
        model=convert["model"],
        format=audio_pb2.AudioFormat(encoding=F32.encoding, sample_rate_hz=RATE),
        target_embedding=target,
        source_voice=convert["source_voice"],
        options=json_format.ParseDict(convert["conversion"], conversion_pb2.ConversionOptions()),
        output_format=F32,
    )
    responses = stream_convert(conversion, spoken.audio.data, config, chunk_bytes=4 * 4000)
    audio = b"".join(r.audio.data for r in responses if r.HasField("audio"))
    return np.frombuffer(audio, "<f4"), target.model_family


def events(responses) -> list[str]:
    return [
        f"{r.step_event.step_id}:{pb.StepEventType.Name(r.step_event.type)}"
        for r in responses
        if r.WhichOneof("response") == "step_event"
    ]


@pytest.mark.parametrize("name", NAMES)
def test_the_graph_streams_the_direct_chain(mesh, name):
    """The shipped graph with deterministic synthesis and conversion settings."""
    gateway, tts, conversion, vad = mesh
    graph = copy.deepcopy(embedded_graphs()[name])
    synth = step(graph, "synth")
    synth["synthesis"] = {**synth.get("synthesis", {}), **QUIET[name]}
    step(graph, "convert")["conversion"] = {"tau": 0.0}  # no conversion noise either
    responses = run_graph(gateway, name, graph)
    assert responses[-1].WhichOneof("response") == "summary", responses[-1]
    # Streamed through: the converter's call is open before the base speaker has
    # spoken (the tiny models are too fast for timings to say more), and its audio
    # comes in pieces.
    order = events(responses)
    started = order.index("convert:STEP_EVENT_TYPE_STARTED")
    assert started < order.index("synth:STEP_EVENT_TYPE_FINISHED"), order
    pieces = [r for r in responses if r.WhichOneof("response") == "output"]
    assert len(pieces) > 1
    audio = converted(responses)
    expected, family = direct(tts, conversion, vad, name, graph)
    assert family == name  # the converter's tone-colour space
    assert len(audio) == len(expected) > 0
    np.testing.assert_allclose(audio, expected, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_the_named_graph_speaks_in_the_reference_voice(mesh, name):
    """As shipped: the models' own noise, the base speaker's stored embedding as source."""
    gateway, _, _, _ = mesh
    responses = run_graph(gateway, name)
    assert responses[-1].WhichOneof("response") == "summary", responses[-1]
    steps = {r.step_event.step_id for r in responses if r.WhichOneof("response") == "step_event"}
    assert steps == {"speech", "embed", "synth", "convert"}
    assert converted(responses).size > 0


def test_without_weights_the_graphs_are_refused_with_the_reason(vad_server, tmp_path, monkeypatch):
    """The embedded declarations as they are, with an empty weights cache."""
    config = load_config()
    tts_models = [m.model_dump() for m in config.service("tts").models if m.optional]
    conversion_models = [m.model_dump() for m in config.service("conversion").models if m.optional]
    assert set(IDS) <= {m["id"] for m in tts_models + conversion_models}
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    for name in ("tts", "conversion", "gateway"):
        (tmp_path / name).mkdir()
    servers = start_mesh(tmp_path, vad_server, tts_models, conversion_models)
    gateway, tts, conversion = servers
    try:
        for server in (tts, conversion, gateway):
            assert server.health() == health_pb2.HealthCheckResponse.SERVING
        with gateway.channel() as channel:
            listed = models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest(), timeout=5
            )
        failed = {m.id: m.state_message for m in listed.models if m.id in IDS}
        assert len(failed) == len(IDS)
        assert all("optional model loads only weights at hand" in why for why in failed.values())
        for name in NAMES:
            with pytest.raises(grpc.RpcError) as raised:
                run_graph(gateway, name)
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "failed to load" in raised.value.details()
            assert "speechmesh models pull" in raised.value.details()
    finally:
        for server in servers:
            server.stop()


def test_the_gateway_routes_embed_to_a_converter_by_id(mesh):
    """SpeakerEncoder/Embed naming a converter goes to the conversion server, which
    embeds with the converter's tone-colour encoder (what the graphs' OP_EMBED uses)."""
    gateway, _, conversion, _ = mesh
    request = conversion_pb2.EmbedRequest(model="openvoice-v2", clips=[reference_clip()])
    found = []
    for server in (gateway, conversion):
        with server.channel() as channel:
            stub = conversion_pb2_grpc.SpeakerEncoderStub(channel)
            found.append(stub.Embed(request, timeout=60).embedding)
    assert found[0] == found[1] and found[0].model_family == "openvoice-v2"


def reference_cut(name: str, piece_seconds: float | None = None) -> dict:
    """The shipped graph's speech and embed steps, with their outputs."""
    graph = embedded_graphs()[name]
    steps = copy.deepcopy([step(graph, "speech"), step(graph, "embed")])
    if piece_seconds is not None:
        steps[1]["embed"] = {"piece_seconds": piece_seconds}
    return {"steps": steps, "outputs": ["speech.segments", "embed.embedding"]}


def cut_outputs(responses) -> tuple[list[vad_pb2.SpeechSegment], np.ndarray]:
    outputs = [r.output for r in responses if r.WhichOneof("response") == "output"]
    segments = [o.segment for o in outputs if o.HasField("segment")]
    (embedding,) = [o.embedding for o in outputs if o.HasField("embedding")]
    return segments, np.array(embedding.values, np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_is_embedded_as_the_mean_of_its_speech_pieces(mesh, name):
    """Through the gateway, the embedding of the reference is the converter's Embed of
    the VAD's speech cut into pieces (2 s here, to make several), the mean of each
    piece's own embedding, and not the embedding of the whole clip."""
    gateway, _, conversion, vad = mesh
    graph = reference_cut(name, piece_seconds=2.0)
    clip = reference_samples()
    segments, embedding = cut_outputs(run_graph(gateway, name, graph, reference=clip))
    assert segments == detect(vad, clip, graph["steps"][0]["vad"])
    assert len(segments) == 2  # the two sentences
    pieces = pieces_of(speech_of(clip, segments), 2.0)
    assert len(pieces) > 2
    np.testing.assert_array_equal(embedding, embed(conversion, name, pieces))
    each = np.mean([embed(conversion, name, [piece]) for piece in pieces], axis=0)
    np.testing.assert_allclose(embedding, each, rtol=1e-5, atol=1e-6)
    whole = embed(conversion, name, [clip])
    assert np.abs(embedding - whole).max() > 1e-3 * np.abs(whole).max()


@pytest.mark.parametrize("name", NAMES)
def test_silence_around_the_reference_leaves_its_embedding(mesh, name):
    """As shipped (10 s pieces): 3 s of quiet noise on both sides of the reference change
    nothing, where the whole clip's embedding moves."""
    gateway, _, conversion, _ = mesh
    clip = reference_samples()
    padded = np.concatenate([quiet(PAD, seed=2), clip, quiet(PAD, seed=3)])
    plain_segments, plain = cut_outputs(
        run_graph(gateway, name, reference_cut(name), reference=clip)
    )
    segments, embedding = cut_outputs(
        run_graph(gateway, name, reference_cut(name), reference=padded)
    )
    shift = PAD * 1000 / RATE
    assert [(s.start_ms - shift, s.end_ms - shift) for s in segments] == [
        (s.start_ms, s.end_ms) for s in plain_segments
    ]
    np.testing.assert_allclose(embedding, plain, rtol=1e-5, atol=1e-6)
    whole, whole_padded = embed(conversion, name, [clip]), embed(conversion, name, [padded])
    assert np.abs(whole_padded - whole).max() > 1e-3 * np.abs(whole).max()


@pytest.mark.parametrize("name", NAMES)
def test_a_reference_without_speech_is_invalid_argument(mesh, name):
    gateway, _, _, _ = mesh
    with pytest.raises(grpc.RpcError) as raised:
        run_graph(gateway, name, reference=quiet(3 * RATE))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert "steps[embed].inputs[audio]: the reference holds no speech" in raised.value.details()
