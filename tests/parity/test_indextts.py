"""IndexTTS-2 against the reference (index-tts @ 6432baf; fixtures from scripts/parity/indextts.py).

The tiny checkpoint is rebuilt from the fixtures' seed (every file must hash as the
one the reference loaded). Stage by stage, the service's modules get the reference's
recorded inputs: text normalisation, tokens, segments and ids (exact); w2v-BERT
features of both 16 kHz signals, the reference mel, the CAM++ style and the prompt
condition (floats); semantic codes and GPT codes under greedy, sampled and beam
decoding (exact, drawn in the engine's order from one seeded generator); the
teacher-forced latent, CFM with the reference's noise and BigVGAN (floats). End to
end, a real server answers Synthesize and StreamingSynthesize over gRPC with the
reference's int16 samples: bit for bit on the machine that made the fixtures (same
thread count), and at most one rounding step apart on a sample in a thousand where
another CPU's kernels sum floats in another order.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from indextts_checkpoint import write_checkpoint
from support import start_server

from parity.support import ReferenceRun, assert_close, assert_exact, assert_quantized
from speechmesh.audio.v1 import audio_pb2
from speechmesh.indextts.v1 import indextts_pb2, indextts_pb2_grpc
from speechmesh.services.indextts.layout import locate
from speechmesh.services.indextts.pipeline import (
    PROMPT_SECONDS,
    EmotionRequest,
    IndexTTS2,
    _resample,
)
from speechmesh.services.indextts.s2mel import mel_frames
from speechmesh.services.indextts.sampling import SamplingSettings

pytestmark = pytest.mark.xdist_group("indextts-parity")

RUN = ReferenceRun("indextts")
CASES = {case["name"]: case for case in RUN.cases}
STOP = 17  # the tiny config's stop_mel_token
MODEL = "indextts-parity"


def _codes(raw: list[int]) -> list[int]:
    """The codes the reference keeps: everything before the first stop token."""
    return raw[: raw.index(STOP)] if STOP in raw else raw


def _settings(case: dict) -> SamplingSettings:
    return SamplingSettings(**case["sampling"])


def _emotion(case: dict) -> EmotionRequest | None:
    if "emotion_vector" not in case:
        return None
    return EmotionRequest(vector=case["emotion_vector"], weight=case["emotion_weight"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = RUN.manifest["checkpoint"]
    folder = tmp_path_factory.mktemp("indextts-parity") / "checkpoints"
    write_checkpoint(folder, layout="hub", seed=RUN.manifest["seed"], w2v_layers=17)
    (folder / "glossary.yaml").write_text(
        json.dumps(built["glossary"], ensure_ascii=False), encoding="utf-8"
    )
    hashes = {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    assert hashes == built["sha256"], "the rebuilt checkpoint is not the one the reference ran"
    return folder


@pytest.fixture(scope="module")
def tts(checkpoint: Path) -> IndexTTS2:
    return IndexTTS2(locate(checkpoint))


@pytest.fixture(scope="module")
def prompt_audio() -> np.ndarray:
    return RUN.array("prompt/audio")


def test_text_front_end_is_the_references(tts: IndexTTS2):
    for entry in RUN.document("text"):
        text = entry["text"]
        if entry["normalized"] is not None:
            assert tts.text.normalize(text) == entry["normalized"], text
        tokens = tts.text.tokenize(text)
        assert tokens == entry["tokens"], text
        assert tts.text.ids(tokens) == entry["ids"], text
        for limit, segments in entry["segments"].items():
            assert [s.tokens for s in tts.text.segments(text, int(limit))] == segments, text
    for case in CASES.values():
        segments = tts.text.segments(case["text"], case["segment_tokens"])
        assert tts.text.normalize(case["text"]) == case["normalized"]
        assert [s.tokens for s in segments] == [s["tokens"] for s in case["segments"]]
        assert [s.ids for s in segments] == [s["text_ids"] for s in case["segments"]]


def test_prompt_features_are_the_references(tts: IndexTTS2, prompt_audio: np.ndarray):
    rate = RUN.manifest["prompt"]["rate"]
    prompt = tts.prompt(prompt_audio, rate)
    assert_close(prompt.semantic, RUN.array("prompt/speaker_features"), "speaker-side features")
    emotion_16k = _resample(prompt_audio, rate, 16000)[: 16000 * PROMPT_SECONDS]
    assert_close(
        tts.semantic_features(emotion_16k),
        RUN.array("prompt/emotion_features"),
        "emotion-side features",
    )
    codes, _ = tts.codec.quantize(torch.from_numpy(RUN.array("prompt/speaker_features")))
    assert_exact(codes, RUN.array("prompt/semantic_codes"), "semantic codes")
    assert_close(prompt.ref_mel, RUN.array("prompt/ref_mel"), "reference mel")
    assert_close(prompt.style, RUN.array("prompt/style"), "CAM++ style")
    assert_close(prompt.prompt_condition, RUN.array("prompt/condition"), "prompt condition")


@pytest.mark.parametrize("name", list(CASES))
def test_codes_latent_flow_and_vocoder_are_the_references(
    tts: IndexTTS2, prompt_audio: np.ndarray, name: str
):
    case = CASES[name]
    prompt = tts.prompt(prompt_audio, RUN.manifest["prompt"]["rate"])
    generator = torch.Generator().manual_seed(case["seed"])
    tts.skip_prompt_draws(generator)  # as the engine does for every request
    emotion = tts.emotion_vector(prompt, _emotion(case), case["text"], generator)
    conditioning = tts.gpt.conditioning(prompt.speaker_latents, emotion)
    for index, segment in enumerate(case["segments"]):
        stem = f"{name}/segment{index}"
        assert_close(emotion, RUN.array(f"{stem}/emovec"), f"{stem} emotion vector")
        # Codes drawn as the engine draws them: GPT, then the flow's noise, in turn.
        generated = tts.gpt.generate(conditioning, segment["text_ids"], _settings(case), generator)
        assert generated.codes == _codes(segment["raw_codes"]), f"{stem} codes"
        assert_close(generated.latent, RUN.array(f"{stem}/latent"), f"{stem} latent")
        mu = RUN.array(f"{stem}/mu")
        drawn = torch.randn(1, 80, mu.shape[1], generator=generator)
        assert_exact(drawn, RUN.array(f"{stem}/noise"), f"{stem} flow noise (draw order)")
        if index == 0:  # the flow and the vocoder once per case keep the test short
            noise = torch.from_numpy(RUN.array(f"{stem}/noise"))
            ref_mel = torch.from_numpy(RUN.array("prompt/ref_mel"))
            style = torch.from_numpy(RUN.array("prompt/style"))
            mel = tts.s2mel.cfm.inference(
                torch.from_numpy(mu), ref_mel, style, 25, 0.7, noise=noise
            )
            assert_close(mel, RUN.array(f"{stem}/mel"), f"{stem} CFM mel")
            target = torch.from_numpy(RUN.array(f"{stem}/mel"))[:, :, prompt.ref_mel.shape[-1] :]
            assert_close(tts.vocode(target), RUN.array(f"{stem}/wave"), f"{stem} BigVGAN")


@torch.inference_mode()
def test_flow_input_is_the_references(tts: IndexTTS2):
    """mu = [prompt condition; length-regulated code embeddings + gpt_layer(latent)]."""
    condition = torch.from_numpy(RUN.array("prompt/condition"))
    for name, case in CASES.items():
        segment = case["segments"][0]
        latent = torch.from_numpy(RUN.array(f"{name}/segment0/latent"))
        codes = torch.tensor([_codes(segment["raw_codes"])])
        content = tts.codec.embed(codes) + tts.s2mel.gpt_layer(latent)
        target = tts.s2mel.length_regulator(content, mel_frames(codes.shape[1]))
        mu = torch.cat([condition, target], dim=1)
        assert_close(mu, RUN.array(f"{name}/segment0/mu"), f"{name} CFM input")


# ------------------------------------------------------------------ through gRPC


@pytest.fixture(scope="module")
def server(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    # The reference's thread count: the DiT's float sums split by it (int16 exact only so).
    threads = RUN.manifest["torch_threads"]
    model = {"id": MODEL, "family": "indextts2", "source": str(checkpoint), "threads": threads}
    config = {"services": {"indextts": {"port": 0, "models": [model]}}, "drain_grace_s": 5}
    running = start_server("indextts", config, tmp_path_factory.mktemp("indextts-parity-srv"))
    yield running
    running.stop()


def _options(case: dict) -> indextts_pb2.SynthesisOptions:
    options = indextts_pb2.SynthesisOptions(
        sampling=indextts_pb2.SamplingOptions(**case["sampling"]),
        max_text_tokens_per_segment=case["segment_tokens"],
        diffusion_steps=RUN.manifest["steps"]["diffusion_steps"],
        cfg_rate=RUN.manifest["steps"]["cfg_rate"],
        interval_silence_ms=200,
        seed=case["seed"],
    )
    if "emotion_vector" in case:
        names = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")
        options.emotion.vector.CopyFrom(
            indextts_pb2.EmotionVector(**dict(zip(names, case["emotion_vector"], strict=True)))
        )
        options.emotion.weight = case["emotion_weight"]
    return options


def _prompt(audio: np.ndarray) -> audio_pb2.Audio:
    fmt = audio_pb2.AudioFormat(
        encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE,
        sample_rate_hz=RUN.manifest["prompt"]["rate"],
        channels=1,
    )
    return audio_pb2.Audio(format=fmt, data=audio.astype(np.float32).tobytes())


@pytest.mark.parametrize("name", list(CASES))
def test_synthesize_returns_the_references_int16(server, prompt_audio: np.ndarray, name: str):
    case = CASES[name]
    request = indextts_pb2.SynthesizeRequest(
        model=MODEL, text=case["text"], speaker_prompt=_prompt(prompt_audio), options=_options(case)
    )
    with server.channel() as channel:
        reply = indextts_pb2_grpc.IndexTTSStub(channel).Synthesize(request, timeout=120)
    samples, rate = soundfile.read(io.BytesIO(reply.audio.data), dtype="int16")
    assert rate == 22050
    assert_quantized(samples, RUN.array(f"{name}/int16"), f"{name} int16 output")


def test_a_stream_returns_the_references_int16(server, prompt_audio: np.ndarray):
    name = "zh_beams"
    case = CASES[name]
    request = indextts_pb2.StreamingSynthesizeRequest(
        model=MODEL, text=case["text"], speaker_prompt=_prompt(prompt_audio), options=_options(case)
    )
    with server.channel() as channel:
        replies = list(
            indextts_pb2_grpc.IndexTTSStub(channel).StreamingSynthesize(request, timeout=120)
        )
    data = b"".join(r.chunk.audio.data for r in replies if r.WhichOneof("response") == "chunk")
    assert_quantized(np.frombuffer(data, "<i2"), RUN.array(f"{name}/int16"), "streamed int16")
