"""Cuts long audio into whisper windows (≤ 30 s) at the pauses the VAD found.

Speech segments are packed greedily: a window starts at a segment's start and takes
the following segments while the window still fits, pauses between them included,
so a word is never cut and timing inside a window stays the audio's own.
"""

from __future__ import annotations


def plan_windows(speech: list[tuple[int, int]], max_samples: int) -> list[tuple[int, int]]:
    """Windows (start, end) covering every speech segment; none longer than max_samples.

    A segment longer than a window (the VAD's max_speech_s prevents this) is split.
    """
    windows: list[tuple[int, int]] = []
    for start, end in speech:
        while end - start > max_samples:
            windows.append((start, start + max_samples))
            start += max_samples
        if windows and end - windows[-1][0] <= max_samples and start >= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def gap_around(speech: list[tuple[int, int]], position: int, total: int) -> tuple[int, int]:
    """The pause (start, end) containing `position`, or (position, position) inside speech."""
    previous_end = 0
    for start, end in speech:
        if position < start:
            return previous_end, start
        if position < end:
            return position, position
        previous_end = end
    return previous_end, total
