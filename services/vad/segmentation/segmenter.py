"""Turns per-window speech probabilities into speech segments, online.

One state machine serves both Detect (whole file) and StreamingDetect (live), so a
stream yields exactly the segments a whole-file call would. It works in the model's
sample domain (16 kHz) and emits an event as soon as it is decided:

- START once the segment is certain to be kept: it has lasted min_speech with no
  silence pending (a pending silence could end it early);
- END once silence has lasted min_silence, at max_speech (split at the last long
  pause if there was one), or at the end of the audio.

Padding extends a start backwards (never into the previous segment) and an end
forwards (never past what has been processed when it is decided).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

# A pause at least this long inside over-long speech is where the segment gets split.
MIN_SILENCE_AT_MAX_SPEECH_MS = 98


@dataclass(frozen=True)
class VadParams:
    """Detector settings, already validated and defaulted."""

    threshold: float = 0.5
    negative_threshold: float = 0.35
    min_speech_ms: int = 250
    min_silence_ms: int = 100
    speech_pad_ms: int = 30
    max_speech_s: float = 0.0
    """0: no limit."""


class EventKind(Enum):
    START = "start"
    END = "end"


@dataclass(frozen=True)
class Event:
    """A decided change, in samples of the model's rate."""

    kind: EventKind
    start: int
    end: int | None
    decided_at: int


class Segmenter:
    """Feed it one probability per window, in order; it returns the events each decides."""

    def __init__(self, params: VadParams, sample_rate: int, window: int) -> None:
        per_ms = sample_rate / 1000
        self.window = window
        self.threshold = params.threshold
        self.negative_threshold = params.negative_threshold
        self.min_speech = int(params.min_speech_ms * per_ms)
        self.min_silence = int(params.min_silence_ms * per_ms)
        self.pad = int(params.speech_pad_ms * per_ms)
        self.max_speech = (
            int(params.max_speech_s * sample_rate) - window - 2 * self.pad
            if params.max_speech_s > 0
            else None
        )
        self.min_silence_at_max = int(MIN_SILENCE_AT_MAX_SPEECH_MS * per_ms)
        self.position = 0  # start of the next window
        self.triggered = False
        self.confirmed = False
        self.start = 0
        self.silence_start: int | None = None
        self.split_end: int | None = None  # last long pause, where an over-long segment splits
        self.split_start = 0
        self.last_end = 0  # padded end of the previous segment

    def push(self, probability: float) -> list[Event]:
        cur = self.position
        self.position += self.window
        events: list[Event] = []
        if probability >= self.threshold:
            if self.silence_start is not None:
                if cur - self.silence_start > self.min_silence_at_max:
                    self.split_end, self.split_start = self.silence_start, cur
                self.silence_start = None
            if not self.triggered:
                self.triggered, self.confirmed, self.start = True, False, cur
        if not self.triggered:
            return events
        if self.max_speech is not None and cur - self.start > self.max_speech:
            if self.split_end is not None:
                events += self._close(self.split_end)
                if self.split_start >= self.split_end:
                    self.triggered, self.confirmed, self.start = True, False, self.split_start
            else:
                events += self._close(cur)
            self.split_end, self.silence_start = None, None
            return events
        if probability < self.negative_threshold:
            if self.silence_start is None:
                self.silence_start = cur
            if cur - self.silence_start > self.min_silence_at_max:
                self.split_end = self.silence_start
            if self.position - self.silence_start >= self.min_silence:
                events += self._close(self.silence_start)
                self.split_end, self.silence_start = None, None
            return events
        if (
            not self.confirmed
            and self.silence_start is None
            and self.position - self.start >= self.min_speech
        ):
            events.append(self._confirm())
        return events

    def push_all(self, probabilities: Iterable[float]) -> list[Event]:
        """`push` each probability in order; the events they decide, in order."""
        events: list[Event] = []
        for probability in probabilities:
            if not self.triggered and probability < self.threshold:
                # Silence outside speech decides nothing (push's first way out, inline:
                # most windows of a live stream take it).
                self.position += self.window
                continue
            events += self.push(probability)
        return events

    def finish(self, total: int) -> list[Event]:
        """Ends a pending segment at the end of the audio (`total` samples)."""
        self.position = total
        if not self.triggered:
            return []
        return self._close(total)

    def _padded_start(self) -> int:
        return max(self.start - self.pad, self.last_end, 0)

    def _confirm(self) -> Event:
        self.confirmed = True
        return Event(EventKind.START, self._padded_start(), None, self.position)

    def _close(self, end: int) -> list[Event]:
        self.triggered = False
        if end - self.start < self.min_speech:
            return []
        events = [] if self.confirmed else [self._confirm()]
        start = self._padded_start()
        padded_end = min(end + self.pad, self.position)
        self.last_end = padded_end
        events.append(Event(EventKind.END, start, padded_end, self.position))
        return events
