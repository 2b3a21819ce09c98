from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.indextts.emotion import parse_answer, scale_weights
from speechmesh.services.indextts.layout import locate
from speechmesh.services.indextts.pipeline import Crossfader, EmotionRequest, IndexTTS2
from speechmesh.services.indextts.s2mel import mel_frames
from speechmesh.services.indextts.sampling import SamplingSettings

pytestmark = pytest.mark.xdist_group("indextts-checkpoint")

FAST = SamplingSettings(num_beams=1, max_mel_tokens=10)


@pytest.fixture(scope="module")
def tts(tiny_checkpoint: Path) -> IndexTTS2:
    return IndexTTS2(locate(tiny_checkpoint))


def _voice(seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _run(tts: IndexTTS2, text: str, seed: int, **kwargs):
    prompt = tts.prompt(_voice(), 16000)
    generator = torch.Generator().manual_seed(seed)
    emotion = kwargs.pop("emotion", prompt.emotion)
    return list(tts.segments(text, prompt, emotion, FAST, steps=2, generator=generator, **kwargs))


def test_end_to_end_lengths_and_determinism(tts: IndexTTS2):
    first = _run(tts, "Hello world. How are you today?", seed=5)
    assert len(first) == 1 and first[0].codes > 0
    assert first[0].samples.size == mel_frames(first[0].codes) * 256
    assert np.all(np.abs(first[0].samples) <= 1.0)
    again = _run(tts, "Hello world. How are you today?", seed=5)
    assert np.array_equal(first[0].samples, again[0].samples)
    other = _run(tts, "Hello world. How are you today?", seed=6)
    assert not np.array_equal(first[0].samples, other[0].samples)
    # 22 tokens with the tiny BPE model: the release cuts them at the sentence mark (10 + 12).
    two = _run(tts, "Hello world. How are you today?", seed=5, max_tokens=20)
    assert len(two) == 2
    # A first-segment limit cuts the first sentence again, as the front-end splits it.
    planned = tts.text.segments("Hello world. How are you today?", 20, 4)
    assert len(planned[0].tokens) <= 4 and len(planned) > len(two)
    quick = _run(tts, "Hello world. How are you today?", seed=5, max_tokens=20, first_max_tokens=4)
    assert len(quick) == len(planned)


def test_prompt_features_are_cached_by_audio(tts: IndexTTS2):
    a = tts.prompt(_voice(), 16000)
    assert tts.prompt(_voice(), 16000) is a
    assert tts.prompt(_voice(1.2), 16000) is not a
    assert (
        a.ref_mel.shape[1] == 80 and a.style.shape == (1, 192) and a.speaker_latents.shape[1] == 32
    )


def test_chunked_streaming_covers_every_frame(tts: IndexTTS2):
    pieces = _run(tts, "Hello world.", seed=3, chunk_codes=4)
    codes = sum(p.codes for p in pieces)
    total = sum(p.samples.size for p in pieces)
    assert total == mel_frames(codes) * 256 and len(pieces) >= 3
    assert pieces[-1].last_in_segment and not pieces[0].last_in_segment


def test_crossfade_joins_identical_overlaps_seamlessly():
    signal = np.sin(np.arange(4096) / 10).astype(np.float32)
    fader = Crossfader(512)
    out = [
        fader.push(signal[:2048], overlap=False),
        fader.push(signal[1536:], overlap=True),
        fader.flush(),
    ]
    assert np.allclose(np.concatenate(out), signal, atol=1e-6)


def test_emotion_vector_mixes_the_matrices(tts: IndexTTS2):
    prompt = tts.prompt(_voice(), 16000)
    request = EmotionRequest(vector=[0.0] * 8)
    assert torch.allclose(tts.emotion_vector(prompt, request, "x", None), prompt.emotion)
    request = EmotionRequest(vector=[1.0, 0, 0, 0, 0, 0, 0, 0])
    mixed = tts.emotion_vector(prompt, request, "x", None)
    rows = tts.emotions.rows(prompt.style, False, None)
    assert torch.allclose(mixed, rows[0:1], atol=1e-5)
    with pytest.raises(FailedPrecondition, match="emotion text model"):
        tts.emotion_vector(prompt, EmotionRequest(text=""), "x", None)


def test_emotion_answer_parser():
    assert parse_answer('{"高兴": 0.5, "愤怒": 2.0}', "text") == [0.5, 1.2, 0, 0, 0, 0, 0, 0]
    assert parse_answer('"sad": 0.7, calm: 0.2', "text")[2] == 0.7
    assert parse_answer('{"悲伤": 0.9}', "so gloomy")[5] == 0.9  # melancholic words swap sad
    assert parse_answer("nothing", "text") == [0, 0, 0, 0, 0, 0, 0, 1.0]
    assert scale_weights([0.33333, 1.0], 0.5) == [0.1666, 0.5]
