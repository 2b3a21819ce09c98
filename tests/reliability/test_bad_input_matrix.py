"""Hostile input through the gateway, over every public RPC: each case gets exactly its
status with a message that names the problem, and afterwards every server of the mesh
is still SERVING, in the same process (nothing restarted).

One mesh for the module: the session's VAD, STT, TTS (Piper, KittenTTS) and conversion
servers, a TTS server with a tiny HarmonySpeech synthesizer and vocoder (the Vocoder
service), a tiny IndexTTS-2 server, and a gateway in front with two graphs. Auth is on:
every call carries the caller's key, the gateway calls its backends with its own, and
the two servers this module starts check it (the session's servers serve without keys).
"""

from __future__ import annotations

import hashlib

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2
from harmonyspeech_checkpoint import save_snapshot
from indextts_checkpoint import write_checkpoint
from matrix import (
    EXHAUSTED,
    INVALID,
    NOT_FOUND,
    S16,
    SECOND,
    Case,
    bad_audio,
    check,
)
from support import gateway_config, start_server

from speechmesh.audio.v1 import audio_pb2 as E
from speechmesh.conversion.v1 import conversion_pb2 as conv
from speechmesh.indextts.v1 import indextts_pb2 as itts
from speechmesh.orchestrator.v1 import orchestrator_pb2 as orch
from speechmesh.stt.v1 import stt_pb2 as stt
from speechmesh.tts.v1 import tts_pb2 as tts
from speechmesh.vad.v1 import vad_pb2 as vad

pytestmark = pytest.mark.xdist_group("gateway")
MAX_MESSAGE = 40 * 1024 * 1024  # the gateway's; the backends keep the default 64 MiB
GRAPHS = {
    "speak": {
        "steps": [
            {"id": "tts", "op": "OP_SYNTHESIZE", "model": "piper-joe", "inputs": {"text": "$text"}}
        ],
        "outputs": ["tts.audio"],
    },
    "transcribe": {
        "steps": [{"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "$audio"}}],
        "outputs": ["stt.transcript"],
    },
}
VAD = "/speechmesh.vad.v1.VoiceActivity/"
STT = "/speechmesh.stt.v1.SpeechToText/"
TTS = "/speechmesh.tts.v1.TextToSpeech/"
VOCODER = "/speechmesh.tts.v1.Vocoder/"
ENCODER = "/speechmesh.conversion.v1.SpeakerEncoder/"
CONVERSION = "/speechmesh.conversion.v1.VoiceConversion/"
RESTORATION = "/speechmesh.conversion.v1.AudioRestoration/"
INDEXTTS = "/speechmesh.indextts.v1.IndexTTS/"
ORCHESTRATOR = "/speechmesh.orchestrator.v1.Orchestrator/"
MODELS = "/speechmesh.models.v1.Models/"
GOOD = E.Audio(format=S16, data=SECOND)
TARGET = E.Audio(format=S16, data=SECOND * 2)
GE2E = E.SpeakerEmbedding(model_family="ge2e-resemblyzer", values=[0.1] * 256)
OPENVOICE = E.SpeakerEmbedding(model_family="openvoice-v2", values=[0.1] * 256)
MAX_TEXT = 20_000
CALLER, GATEWAY_KEY = "matrix-caller", "matrix-gateway"
AUTH = {"auth": {"enabled": True}}
KEY = [("authorization", f"Bearer {CALLER}")]


def digest(*keys: str) -> str:
    return ",".join(f"sha256:{hashlib.sha256(k.encode()).hexdigest()}" for k in keys)


KEYS = {"SPEECHMESH_API_KEYS": digest(CALLER, GATEWAY_KEY)}


@pytest.fixture(scope="module")
def mesh(vad_server, stt_server, tts_server, conversion_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    harmony = save_snapshot(root / "harmony-speech-v1")
    harmony_models = [
        {
            "id": "harmony-synth",
            "family": "harmonyspeech-synthesizer",
            "source": str(harmony),
            "options": {"paired_vocoder": "harmony-vocoder"},
        },
        {"id": "harmony-vocoder", "family": "harmonyspeech-vocoder", "source": str(harmony)},
    ]
    harmony_server = start_server(
        "tts", {"services": {"tts": {"port": 0, "models": harmony_models}}, **AUTH}, root, env=KEYS
    )
    write_checkpoint(root / "IndexTTS-2")
    index_model = {"id": "indextts-tiny", "family": "indextts2", "source": str(root / "IndexTTS-2")}
    index_server = start_server(
        "indextts",
        {"services": {"indextts": {"port": 0, "models": [index_model]}}, **AUTH},
        root,
        env=KEYS,
    )
    backends = {
        "vad": vad_server,
        "stt": stt_server,
        "tts": tts_server,
        "tts-harmony": harmony_server,
        "conversion": conversion_server,
        "indextts": index_server,
    }
    config = gateway_config(
        {name: server.address for name, server in backends.items()},
        limits={"max_message_bytes": MAX_MESSAGE},
        **AUTH,
    )
    config["gateway"]["graphs"] = GRAPHS
    gateway = start_server(
        "gateway",
        config,
        root,
        env={"SPEECHMESH_API_KEYS": digest(CALLER), "SPEECHMESH_BACKEND_KEY": GATEWAY_KEY},
    )
    servers = {**backends, "gateway": gateway}
    pids = {name: server.process.pid for name, server in servers.items()}
    yield gateway, servers, pids
    for server in (gateway, harmony_server, index_server):
        server.stop()


# --- Cases ------------------------------------------------------------------------------


def audio_field_cases() -> dict[str, Case]:
    """Every bad Audio in every unary audio field, its message naming the field."""
    fields = {
        "Detect.audio": (VAD + "Detect", lambda a: vad.DetectRequest(audio=a), "audio"),
        "Recognize.audio": (STT + "Recognize", lambda a: stt.RecognizeRequest(audio=a), "audio"),
        "Embed.clips": (
            ENCODER + "Embed",
            lambda a: conv.EmbedRequest(model="ge2e-resemblyzer", clips=[a]),
            "clips[0]",
        ),
        "Convert.source": (
            CONVERSION + "Convert",
            lambda a: conv.ConvertRequest(model="openvoice-v2-tiny", source=a, target_audio=TARGET),
            "source",
        ),
        "Convert.target_audio": (
            CONVERSION + "Convert",
            lambda a: conv.ConvertRequest(model="openvoice-v2-tiny", source=GOOD, target_audio=a),
            "target_audio",
        ),
        "Restore.audio": (
            RESTORATION + "Restore",
            lambda a: conv.RestoreRequest(model="rnnoise", audio=a),
            "audio",
        ),
        "IndexTTS.Synthesize.speaker_prompt": (
            INDEXTTS + "Synthesize",
            lambda a: itts.SynthesizeRequest(
                model="indextts-tiny", text="Hello.", speaker_prompt=a
            ),
            "speaker_prompt",
        ),
        "RunGraph.inputs": (
            ORCHESTRATOR + "RunGraph",
            lambda a: orch.RunGraphRequest(
                graph_name="transcribe", inputs={"audio": orch.Value(audio=a)}
            ),
            "inputs[audio].audio",
        ),
    }
    cases = {}
    for where, (method, build, prefix) in fields.items():
        for name, (clip, code, reason) in bad_audio().items():
            if where == "Convert.target_audio" and code != INVALID:
                continue  # the source is decoded after the target: one long case is enough
            named = f"{prefix}.{reason}" if code == INVALID else reason
            if where.startswith("IndexTTS") and name == "empty":
                named = "speaker_prompt: a recording of the voice"  # an empty prompt is none
            cases[f"{where}: {name}"] = Case(method, build(clip), code, named)
    return cases


def text_cases() -> dict[str, Case]:
    """Bad text and options for every RPC that takes text."""
    rpcs = {
        "Synthesize": (
            TTS + "Synthesize",
            lambda **f: tts.SynthesizeRequest(model="piper-joe", **f),
        ),
        "StreamingSynthesize": (
            TTS + "StreamingSynthesize",
            lambda **f: tts.StreamingSynthesizeRequest(model="piper-joe", **f),
        ),
        "SynthesizeSpectrogram": (
            TTS + "SynthesizeSpectrogram",
            lambda **f: tts.SynthesizeSpectrogramRequest(model="harmony-synth", **f),
        ),
        "IndexTTS.Synthesize": (
            INDEXTTS + "Synthesize",
            lambda **f: itts.SynthesizeRequest(model="indextts-tiny", speaker_prompt=GOOD, **f),
        ),
        "IndexTTS.StreamingSynthesize": (
            INDEXTTS + "StreamingSynthesize",
            lambda **f: itts.StreamingSynthesizeRequest(
                model="indextts-tiny", speaker_prompt=GOOD, **f
            ),
        ),
    }
    cases = {}
    for name, (method, build) in rpcs.items():
        cases[f"{name}: empty text"] = Case(method, build(text=""), INVALID, "text")
        cases[f"{name}: whitespace only"] = Case(method, build(text=" \n\t "), INVALID, "text")
        cases[f"{name}: text over max_text_chars"] = Case(
            method, build(text="x" * (MAX_TEXT + 1)), INVALID, f"max_text_chars is {MAX_TEXT}"
        )
        # Field 3 (text) of every one of these requests, holding bytes that are not UTF-8.
        cases[f"{name}: invalid UTF-8"] = Case(method, b"\x1a\x04ab\xff\xfe", INVALID, "UTF-8")
        unknown = build(text="Hello.")
        unknown.model = "no-such-model"
        cases[f"{name}: unknown model"] = Case(method, unknown, NOT_FOUND, "no-such-model")
    piper = rpcs["Synthesize"][1]
    options = tts.SynthesisOptions
    cases.update(
        {
            "Synthesize: NaN speed": Case(
                TTS + "Synthesize",
                piper(text="Hi.", options=options(speed=float("nan"))),
                INVALID,
                "options.speed",
            ),
            "Synthesize: infinite speed": Case(
                TTS + "Synthesize",
                piper(text="Hi.", options=options(speed=float("inf"))),
                INVALID,
                "options.speed",
            ),
            "Synthesize: unknown voice": Case(
                TTS + "Synthesize",
                piper(text="Hi.", options=options(voice="nobody")),
                NOT_FOUND,
                "nobody",
            ),
            "Synthesize: language not served": Case(
                TTS + "Synthesize",
                piper(text="Hallo.", options=options(language="de")),
                NOT_FOUND,
                "language 'de' is not served",
            ),
            "Synthesize: unknown output encoding": Case(
                TTS + "Synthesize",
                piper(text="Hi.", output_format=E.AudioFormat(encoding=99)),
                INVALID,
                "output_format.encoding",
            ),
            "Synthesize: wrong-family speaker embedding": Case(
                TTS + "Synthesize",
                tts.SynthesizeRequest(
                    model="harmony-synth", text="Hi.", options=options(speaker_embedding=OPENVOICE)
                ),
                INVALID,
                "options.speaker_embedding.model_family",
            ),
            "IndexTTS.Synthesize: no speaker prompt": Case(
                INDEXTTS + "Synthesize",
                itts.SynthesizeRequest(model="indextts-tiny", text="Hello."),
                INVALID,
                "speaker_prompt",
            ),
            "IndexTTS.Synthesize: NaN temperature": Case(
                INDEXTTS + "Synthesize",
                itts.SynthesizeRequest(
                    model="indextts-tiny",
                    text="Hello.",
                    speaker_prompt=GOOD,
                    options=itts.SynthesisOptions(
                        sampling=itts.SamplingOptions(temperature=float("nan"))
                    ),
                ),
                INVALID,
                "options.sampling.temperature",
            ),
        }
    )
    return cases


def _stream(config_message, payload_message, prefix: str) -> dict[str, tuple[list, str]]:
    """The config-first violations every request stream refuses the same way."""
    return {
        "no messages": ([], "config"),
        "payload first": ([payload_message, config_message], "config"),
        "a second config": ([config_message, payload_message, config_message], "requests[2]"),
        "an empty message": ([config_message, type(config_message)()], "requests[1]"),
    }


def stream_cases() -> dict[str, Case]:
    chunk = E.AudioChunk(data=b"\0\0" * 1600)
    mel = E.Tensor(shape=[80, 4], dtype=E.DATA_TYPE_FLOAT32, data=np.zeros(320, "<f4").tobytes())
    streams = {
        "StreamingDetect": (
            VAD + "StreamingDetect",
            lambda **f: vad.StreamingDetectRequest(
                config=vad.StreamingDetectConfig(**{"format": S16, **f})
            ),
            vad.StreamingDetectRequest(audio=chunk),
        ),
        "StreamingRecognize": (
            STT + "StreamingRecognize",
            lambda **f: stt.StreamingRecognizeRequest(
                config=stt.StreamingRecognizeConfig(**{"format": S16, **f})
            ),
            stt.StreamingRecognizeRequest(audio=chunk),
        ),
        "StreamingConvert": (
            CONVERSION + "StreamingConvert",
            lambda **f: conv.StreamingConvertRequest(
                config=conv.StreamingConvertConfig(
                    **{"format": S16, "target_audio": TARGET, "model": "openvoice-v2-tiny", **f}
                )
            ),
            conv.StreamingConvertRequest(audio=chunk),
        ),
        "StreamingRestore": (
            RESTORATION + "StreamingRestore",
            lambda **f: conv.StreamingRestoreRequest(
                config=conv.StreamingRestoreConfig(**{"format": S16, "model": "rnnoise", **f})
            ),
            conv.StreamingRestoreRequest(audio=chunk),
        ),
        "BidiSynthesize": (
            TTS + "BidiSynthesize",
            lambda **f: tts.BidiSynthesizeRequest(
                config=tts.BidiSynthesizeConfig(**{"model": "piper-joe", **f})
            ),
            tts.BidiSynthesizeRequest(text="Hello there."),
        ),
        "StreamingVocode": (
            VOCODER + "StreamingVocode",
            lambda **f: tts.StreamingVocodeRequest(
                config=tts.StreamingVocodeConfig(**{"model": "harmony-vocoder", **f})
            ),
            tts.StreamingVocodeRequest(mel=mel),
        ),
    }
    cases = {}
    for name, (method, config, payload) in streams.items():
        for what, (messages, reason) in _stream(config(), payload, name).items():
            cases[f"{name}: {what}"] = Case(method, messages, INVALID, reason)
        cases[f"{name}: unknown model"] = Case(
            method, [config(model="no-such-model"), payload], NOT_FOUND, "no-such-model"
        )
        cases[f"{name}: cancelled by the client"] = Case(
            method, [config(), payload, payload], grpc.StatusCode.CANCELLED, "ancel", cancel_after=2
        )
        cases[f"{name}: a 1 ms deadline"] = Case(
            method,
            [config(), payload],
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "Deadline",
            timeout=0.001,
        )
    flac = E.AudioFormat(encoding=E.AUDIO_ENCODING_FLAC)
    audio_streams = {
        "StreamingDetect": streams["StreamingDetect"],
        "StreamingRecognize": streams["StreamingRecognize"],
        "StreamingRestore": streams["StreamingRestore"],
        "StreamingConvert": streams["StreamingConvert"],
    }
    for name, (method, config, payload) in audio_streams.items():
        cases[f"{name}: a FLAC stream"] = Case(
            method, [config(format=flac), payload], INVALID, "config.format.encoding"
        )
        cases[f"{name}: raw without a rate"] = Case(
            method,
            [config(format=E.AudioFormat(encoding=E.AUDIO_ENCODING_PCM_S16LE)), payload],
            INVALID,
            "config.format.sample_rate_hz",
        )
        cases[f"{name}: ends inside a sample"] = Case(
            method,
            [config(), type(payload)(audio=E.AudioChunk(data=b"\0" * 1025))],
            INVALID,
            "stray",
        )
    cases["StreamingConvert: wrong-family target"] = Case(
        CONVERSION + "StreamingConvert",
        [
            conv.StreamingConvertRequest(
                config=conv.StreamingConvertConfig(
                    model="openvoice-v2-tiny", format=S16, target_embedding=GE2E
                )
            ),
            streams["StreamingConvert"][2],
        ],
        INVALID,
        "config.target_embedding.model_family",
    )
    cases["BidiSynthesize: a text piece over max_text_chars"] = Case(
        TTS + "BidiSynthesize",
        [streams["BidiSynthesize"][1](), tts.BidiSynthesizeRequest(text="x" * (MAX_TEXT + 1))],
        INVALID,
        "requests[1].text",
    )
    cases["BidiSynthesize: invalid UTF-8 in a text piece"] = Case(
        TTS + "BidiSynthesize",
        [streams["BidiSynthesize"][1](), b"\x12\x03a\xc3("],
        INVALID,
        "UTF-8",
    )
    return cases


def other_cases() -> dict[str, Case]:
    mel = E.Tensor(shape=[80, 4], dtype=E.DATA_TYPE_FLOAT32, data=np.zeros(320, "<f4").tobytes())
    nan_mel = E.Tensor(
        shape=[80, 4], dtype=E.DATA_TYPE_FLOAT32, data=np.full(320, np.nan, "<f4").tobytes()
    )
    short_mel = E.Tensor(shape=[80, 4], dtype=E.DATA_TYPE_FLOAT32, data=b"\0" * 100)
    long_source = E.Audio(
        format=E.AudioFormat(encoding=E.AUDIO_ENCODING_MULAW, sample_rate_hz=8000),
        data=b"\xff" * (8000 * 3000),
    )
    f32 = E.AudioFormat(encoding=E.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=48000)
    vocode = lambda **f: tts.VocodeRequest(**{"model": "harmony-vocoder", **f})  # noqa: E731
    return {
        "Vocode: no mel": Case(VOCODER + "Vocode", vocode(), INVALID, "mel"),
        "Vocode: NaN mel": Case(VOCODER + "Vocode", vocode(mel=nan_mel), INVALID, "mel"),
        "Vocode: mel shorter than its shape": Case(
            VOCODER + "Vocode", vocode(mel=short_mel), INVALID, "mel"
        ),
        "Vocode: unknown model": Case(
            VOCODER + "Vocode", vocode(model="no-such-model", mel=mel), NOT_FOUND, "no-such-model"
        ),
        "Detect: unknown model": Case(
            VAD + "Detect",
            vad.DetectRequest(model="no-such-model", audio=GOOD),
            NOT_FOUND,
            "no-such-model",
        ),
        "Detect: NaN threshold": Case(
            VAD + "Detect",
            vad.DetectRequest(audio=GOOD, options=vad.VadOptions(threshold=float("nan"))),
            INVALID,
            "options.threshold",
        ),
        "Detect: a message over max_message_bytes": Case(
            VAD + "Detect",
            vad.DetectRequest(audio=E.Audio(format=S16, data=b"\0" * (MAX_MESSAGE + 2))),
            EXHAUSTED,
            "larger than max",
        ),
        "Recognize: unknown model": Case(
            STT + "Recognize",
            stt.RecognizeRequest(model="no-such-model", audio=GOOD),
            NOT_FOUND,
            "no-such-model",
        ),
        "Recognize: unknown language": Case(
            STT + "Recognize",
            stt.RecognizeRequest(audio=GOOD, options=stt.RecognitionOptions(language="xx")),
            INVALID,
            "options.language",
        ),
        "Recognize: a 1 ms deadline": Case(
            STT + "Recognize",
            stt.RecognizeRequest(audio=GOOD),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "Deadline",
            timeout=0.001,
        ),
        "Embed: no clips": Case(
            ENCODER + "Embed", conv.EmbedRequest(model="ge2e-resemblyzer"), INVALID, "clips"
        ),
        "Embed: unknown model": Case(
            ENCODER + "Embed",
            conv.EmbedRequest(model="no-such-model", clips=[GOOD]),
            NOT_FOUND,
            "no-such-model",
        ),
        "Convert: wrong-family target embedding": Case(
            CONVERSION + "Convert",
            conv.ConvertRequest(model="openvoice-v2-tiny", source=GOOD, target_embedding=GE2E),
            INVALID,
            "target_embedding.model_family",
        ),
        "Convert: wrong-family source embedding": Case(
            CONVERSION + "Convert",
            conv.ConvertRequest(
                model="openvoice-v1-tiny", source=GOOD, target_audio=TARGET, source_embedding=GE2E
            ),
            INVALID,
            "source_embedding.model_family",
        ),
        "Convert: no target": Case(
            CONVERSION + "Convert",
            conv.ConvertRequest(model="openvoice-v2-tiny", source=GOOD),
            INVALID,
            "target",
        ),
        "Convert: NaN tau": Case(
            CONVERSION + "Convert",
            conv.ConvertRequest(
                model="openvoice-v2-tiny",
                source=GOOD,
                target_audio=TARGET,
                options=conv.ConversionOptions(tau=float("nan")),
            ),
            INVALID,
            "options.tau",
        ),
        "Convert: a reply over max_message_bytes": Case(
            CONVERSION + "Convert",
            conv.ConvertRequest(
                model="openvoice-v2-tiny",
                source=long_source,
                target_audio=TARGET,
                output_format=f32,
            ),
            EXHAUSTED,
            "max_message_bytes",
        ),
        "Restore: a reply over max_message_bytes": Case(
            RESTORATION + "Restore",
            conv.RestoreRequest(model="rnnoise", audio=long_source, output_format=f32),
            EXHAUSTED,
            "max_message_bytes",
        ),
        "Restore: unknown model": Case(
            RESTORATION + "Restore",
            conv.RestoreRequest(model="no-such-model", audio=GOOD),
            NOT_FOUND,
            "no-such-model",
        ),
        "Restore: options of another family": Case(
            RESTORATION + "Restore",
            conv.RestoreRequest(
                model="rnnoise",
                audio=GOOD,
                options=conv.RestorationOptions(voice_fixer=conv.VoiceFixerOptions(mode=1)),
            ),
            INVALID,
            "options.voice_fixer",
        ),
        "ListModels: a request that does not parse": Case(
            MODELS + "ListModels", b"\xff\xff\xff", INVALID, "not a valid message"
        ),
        "ListGraphs: a request that does not parse": Case(
            ORCHESTRATOR + "ListGraphs", b"\xff\xff\xff", INVALID, "not a valid message"
        ),
        "StreamingRecognize: a chunk over max_message_bytes": Case(
            STT + "StreamingRecognize",
            [
                stt.StreamingRecognizeRequest(config=stt.StreamingRecognizeConfig(format=S16)),
                stt.StreamingRecognizeRequest(audio=E.AudioChunk(data=b"\0" * (MAX_MESSAGE + 2))),
            ],
            EXHAUSTED,
            "larger than max",
        ),
        "RunGraph: unknown graph": Case(
            ORCHESTRATOR + "RunGraph",
            orch.RunGraphRequest(graph_name="no-such-graph"),
            NOT_FOUND,
            "no-such-graph",
        ),
        "RunGraph: a required input missing": Case(
            ORCHESTRATOR + "RunGraph",
            orch.RunGraphRequest(graph_name="speak"),
            INVALID,
            "inputs[text]",
        ),
        "RunGraph: an input of the wrong kind": Case(
            ORCHESTRATOR + "RunGraph",
            orch.RunGraphRequest(graph_name="speak", inputs={"text": orch.Value(audio=GOOD)}),
            INVALID,
            "inputs[text]",
        ),
        "RunGraph: empty text": Case(
            ORCHESTRATOR + "RunGraph",
            orch.RunGraphRequest(graph_name="speak", inputs={"text": orch.Value(text=" ")}),
            INVALID,
            "inputs[text].text",
        ),
        "RunGraph: neither a graph name nor a graph": Case(
            ORCHESTRATOR + "RunGraph", orch.RunGraphRequest(), INVALID, "graph"
        ),
        "RunGraph: an inline graph with an unknown model": Case(
            ORCHESTRATOR + "RunGraph",
            orch.RunGraphRequest(
                inline_graph=orch.Graph(
                    steps=[
                        orch.Step(
                            id="tts",
                            op=orch.OP_SYNTHESIZE,
                            model="no-such-model",
                            inputs={"text": "$text"},
                        )
                    ],
                    outputs=["tts.audio"],
                ),
                inputs={"text": orch.Value(text="Hi.")},
            ),
            INVALID,
            "inline_graph.steps[0].model: step 'tts': model 'no-such-model'",
        ),
    }


CASES = {**audio_field_cases(), **text_cases(), **stream_cases(), **other_cases()}


def test_the_matrix_is_large():
    assert len(CASES) >= 100, len(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(mesh, name):
    gateway, servers, _ = mesh
    with gateway.channel() as channel:
        check(channel, CASES[name], KEY)
    assert [n for n, server in servers.items() if server.process.poll() is not None] == []


# Streams the backend refuses while the client is still sending: each must keep the
# backend's status (a write racing the refusal once turned it into INTERNAL).
REFUSED_WHILE_SENDING = [
    "StreamingConvert: wrong-family target",
    "StreamingRestore: raw without a rate",
    "StreamingDetect: raw without a rate",
    "StreamingRecognize: raw without a rate",
]


def test_streams_refused_while_the_client_sends_keep_the_backend_status(mesh):
    gateway, _, _ = mesh
    with gateway.channel() as channel:
        for _ in range(25):
            for name in REFUSED_WHILE_SENDING:
                check(channel, CASES[name], KEY)


def test_every_server_is_serving_in_the_same_process(mesh):
    """Runs after the matrix (pytest keeps the file's order)."""
    _, servers, pids = mesh
    for name, server in servers.items():
        assert server.process.poll() is None, name
        assert server.process.pid == pids[name], name
        assert server.health() == health_pb2.HealthCheckResponse.SERVING, name
