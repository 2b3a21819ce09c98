"""Chatterbox's small pieces against figures of the reference stack.

The loudness figures are pyloudnorm 0.2.0's Meter(rate).integrated_loudness of the
same signals, the window counts those of chatterbox-tts 0.1.7's get_num_wins (rate
1.3, coverage 0.8), both taken once from the packages in the parity environment.
"""

from __future__ import annotations

import numpy as np
import pytest

from speechmesh.services.tts.chatterbox import tokenizers
from speechmesh.services.tts.chatterbox.loudness import integrated_loudness, normalize_loudness
from speechmesh.services.tts.chatterbox.voice_encoder import partial_count


def tone(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wav = 0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
    wav += 0.01 * np.sin(2 * np.pi * 3001 * t)
    wav = wav.astype(np.float32)
    wav[:30000] *= 0.001
    return wav


def test_integrated_loudness_is_pyloudnorms():
    assert integrated_loudness(tone(24000, 6), 24000) == pytest.approx(-21.30134650584236, abs=1e-9)
    t = np.arange(16000 * 3) / 16000
    sine = (0.05 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    assert integrated_loudness(sine, 16000) == pytest.approx(-29.097262540882348, abs=1e-9)


def test_normalized_clips_reach_the_target_and_unmeasurable_ones_stay():
    wav = tone(24000, 6)
    louder = normalize_loudness(wav, 24000, -27.0)
    assert integrated_loudness(louder, 24000) == pytest.approx(-27.0, abs=1e-4)
    short = wav[:1000]
    assert normalize_loudness(short, 24000, -27.0) is short
    silent = np.zeros(24000, np.float32)
    assert not normalize_loudness(silent, 24000, -27.0).any()


@pytest.mark.parametrize(
    ("frames", "windows"),
    [(1, (1, 160)), (100, (1, 160)), (160, (1, 160)), (200, (1, 160)), (236, (2, 237)),
     (237, (2, 237)), (300, (3, 314)), (500, (5, 468))],
)  # fmt: skip
def test_partial_windows_are_the_references(frames, windows):
    assert partial_count(frames) == windows


@pytest.mark.parametrize(
    ("variant", "text", "normalized"),
    [
        ("standard", "", tokenizers.EMPTY_TEXT),
        ("standard", "wait... what; no", "Wait,  what,  no."),
        ("turbo", "wait... what; no", "Wait... what; no."),
        ("multilingual", "你好。", "你好。"),
        ("standard", "你好。", "你好。."),
        ("standard", "好", "好."),
    ],
)
def test_punctuation_is_normalized_per_variant(variant, text, normalized):
    assert tokenizers.normalize_punctuation(text, variant) == normalized


def test_korean_syllables_become_jamo():
    assert tokenizers.decompose_hangul("한 ") == "\u1112\u1161\u11ab"
