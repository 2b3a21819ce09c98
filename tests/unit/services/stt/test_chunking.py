"""Long audio is cut into whisper windows at pauses, never inside speech."""

from __future__ import annotations

import pytest

from speechmesh.services.stt.chunking import gap_around, plan_windows


def test_segments_are_packed_while_the_window_fits():
    speech = [(0, 100), (150, 300), (320, 500), (900, 1000)]
    assert plan_windows(speech, 500) == [(0, 500), (900, 1000)]


def test_every_window_fits_and_covers_its_segments():
    speech = [(i * 170, i * 170 + 120) for i in range(40)]
    windows = plan_windows(speech, 1000)
    assert all(end - start <= 1000 for start, end in windows)
    for start, end in speech:
        assert any(ws <= start and end <= we for ws, we in windows)
    assert windows == sorted(windows)


def test_an_overlong_segment_is_split():
    assert plan_windows([(0, 2500)], 1000) == [(0, 1000), (1000, 2000), (2000, 2500)]


@pytest.mark.parametrize(
    ("position", "gap"),
    [(50, (0, 100)), (150, (150, 150)), (250, (200, 300)), (450, (400, 500))],
)
def test_gap_around_finds_the_pause(position, gap):
    assert gap_around([(100, 200), (300, 400)], position, 500) == gap
