"""A reference's speech segments joined and cut into pieces, as se_extractor cuts them."""

from __future__ import annotations

import numpy as np
import pytest

from speechmesh.gateway.reference_cut import speech_pieces
from speechmesh.gateway.values import AudioPiece
from speechmesh.runtime.errors import InvalidArgument
from speechmesh.vad.v1 import vad_pb2

RATE = 16000


def segment(start_ms: float, end_ms: float) -> vad_pb2.SpeechSegment:
    return vad_pb2.SpeechSegment(start_ms=start_ms, end_ms=end_ms)


def clip(seconds: float, rate: int = RATE) -> AudioPiece:
    # Each sample its own index, so a piece shows exactly which samples it took.
    return AudioPiece(np.arange(int(seconds * rate), dtype=np.float32), rate)


def test_segments_are_joined_at_whole_milliseconds():
    pieces = speech_pieces(clip(3.0), [segment(100.9, 600.2), segment(1500.0, 2000.99)], 10.0, "f")
    (piece,) = pieces
    expected = np.concatenate([np.arange(1600, 9600), np.arange(24000, 32000)])
    np.testing.assert_array_equal(piece.samples, expected)
    assert piece.rate == RATE


def test_a_millisecond_is_cut_where_the_reference_cuts_it_at_any_rate():
    # 22.05 samples per millisecond: 10 ms starts at sample int(220.5) = 220.
    (piece,) = speech_pieces(clip(1.0, 22050), [segment(10.0, 30.0)], 10.0, "f")
    np.testing.assert_array_equal(piece.samples, np.arange(220, 661))


@pytest.mark.parametrize(
    ("seconds", "piece_seconds", "count"),
    [(25.0, 10.0, 2), (35.0, 10.0, 4), (14.75, 10.0, 1), (15.25, 10.0, 2), (3.0, 10.0, 1)],
    ids=["half-rounds-to-even", "three-and-a-half", "under", "over", "short-is-one-piece"],
)
def test_speech_is_cut_into_round_seconds_over_piece_length_pieces(seconds, piece_seconds, count):
    whole = clip(seconds)
    pieces = speech_pieces(whole, [segment(0.0, seconds * 1000)], piece_seconds, "f")
    assert len(pieces) == count
    lengths = {len(p.samples) for p in pieces}
    assert max(lengths) - min(lengths) <= 16  # equal, to the millisecond
    joined = np.concatenate([p.samples for p in pieces])
    np.testing.assert_array_equal(joined, whole.samples[: len(joined)])
    assert len(whole.samples) - len(joined) < 16  # at most the last partial millisecond


def test_pieces_are_equal_lengths_of_the_joined_speech():
    pieces = speech_pieces(clip(8.0), [segment(0.0, 3000.0), segment(5000.0, 8000.0)], 2.0, "f")
    assert [len(p.samples) for p in pieces] == [32000, 32000, 32000]
    # The middle piece spans the silence left out: the first segment's end, the second's start.
    middle = np.concatenate([np.arange(32000, 48000), np.arange(80000, 96000)])
    np.testing.assert_array_equal(pieces[1].samples, middle)
    np.testing.assert_array_equal(pieces[2].samples, np.arange(96000, 128000))


@pytest.mark.parametrize("segments", [[], [segment(500.0, 500.0)]], ids=["none", "empty"])
def test_no_speech_is_invalid_argument_on_the_field(segments):
    with pytest.raises(InvalidArgument) as raised:
        speech_pieces(clip(2.0), segments, 10.0, "steps[embed].inputs[audio]")
    assert raised.value.violations[0].field == "steps[embed].inputs[audio]"
    assert "holds no speech" in str(raised.value)
