"""The online segmenter on hand-made probability sequences (16 kHz, 512-sample windows)."""

from __future__ import annotations

import random

from speechmesh.services.vad.segmentation.segmenter import EventKind, Segmenter, VadParams

W = 512
RATE = 16000


def run(probabilities: list[float], **params) -> list:
    segmenter = Segmenter(VadParams(**params), RATE, W)
    events = []
    for p in probabilities:
        events += segmenter.push(p)
    return events + segmenter.finish(len(probabilities) * W)


def segments(events) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in events if e.kind is EventKind.END]


def test_silence_gives_nothing():
    assert run([0.01] * 100) == []


def test_one_segment_with_padding_and_decision_points():
    probabilities = [0.0] * 10 + [0.9] * 30 + [0.0] * 20
    events = run(probabilities, speech_pad_ms=30, min_speech_ms=250, min_silence_ms=100)
    start, end = events
    pad = 480
    assert (start.kind, start.start) == (EventKind.START, 10 * W - pad)
    # START is decided once 250 ms (8 windows) of speech have been seen.
    assert start.decided_at == 10 * W + 8 * W
    assert (end.kind, end.start, end.end) == (EventKind.END, 10 * W - pad, 40 * W + pad)
    # END is decided once 100 ms of silence (4 windows) follow the speech.
    assert end.decided_at == 40 * W + 4 * W


def test_speech_shorter_than_min_speech_is_dropped():
    assert run([0.0] * 5 + [0.9] * 5 + [0.0] * 20, min_speech_ms=250) == []


def test_a_dip_shorter_than_min_silence_does_not_split():
    probabilities = [0.9] * 20 + [0.0] * 3 + [0.9] * 20 + [0.0] * 20
    assert segments(run(probabilities, speech_pad_ms=0, min_silence_ms=100)) == [(0, 43 * W)]


def test_hysteresis_keeps_speech_between_the_thresholds():
    probabilities = [0.9] * 10 + [0.4] * 30 + [0.0] * 20
    assert segments(run(probabilities, speech_pad_ms=0)) == [(0, 40 * W)]


def test_pending_speech_ends_with_the_audio():
    events = run([0.0] * 4 + [0.9] * 20, speech_pad_ms=30)
    assert segments(events) == [(4 * W - 480, 24 * W)]


def test_padding_never_reaches_into_the_previous_segment():
    probabilities = [0.9] * 20 + [0.0] * 5 + [0.9] * 20 + [0.0] * 20
    found = segments(run(probabilities, speech_pad_ms=200, min_silence_ms=100))
    assert len(found) == 2
    assert found[1][0] >= found[0][1]


def test_max_speech_splits_at_the_last_long_pause():
    # 2 s limit: a 160 ms pause at 1.28 s is where the 3 s of speech gets split.
    probabilities = [0.9] * 40 + [0.0] * 5 + [0.9] * 50 + [0.0] * 20
    found = segments(run(probabilities, speech_pad_ms=0, min_silence_ms=300, max_speech_s=2.0))
    assert found[0] == (0, 40 * W)
    assert found[1][0] == 45 * W


def test_max_speech_without_a_pause_cuts_at_the_limit():
    found = segments(run([0.9] * 200, speech_pad_ms=0, max_speech_s=2.0))
    assert len(found) >= 2
    assert all(end - start <= 2.0 * RATE for start, end in found)


def test_push_all_decides_what_push_decides():
    # Speech, dips, hysteresis band and long silences, under several settings.
    rng = random.Random(7)
    probabilities = []
    for _ in range(60):
        level = rng.choice([0.02, 0.3, 0.45, 0.8, 0.97])
        probabilities += [min(max(level + rng.uniform(-0.1, 0.1), 0.0), 1.0)] * rng.randint(1, 25)
    settings = [{}, {"min_silence_ms": 300, "speech_pad_ms": 0}, {"max_speech_s": 1.0}]
    for params in settings:
        one_by_one = run(probabilities, **params)
        segmenter = Segmenter(VadParams(**params), RATE, W)
        at_once = segmenter.push_all(probabilities) + segmenter.finish(len(probabilities) * W)
        assert at_once == one_by_one
        assert any(e.kind is EventKind.END for e in at_once)
