"""One detection run: decoded audio → the detector's windows → batched model → events.

Detect feeds a whole file at once and StreamingDetect chunk by chunk; both go through
this same path, so they find the same segments. Offsets are mapped back from the
detector's rate to the input's own sample rate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from speechmesh.runtime.audio import AudioSpec
from speechmesh.runtime.pool import HostedModel
from speechmesh.runtime.streams import StreamInput
from speechmesh.services.vad.segmentation.detector import VadJob, VoiceActivityDetector
from speechmesh.services.vad.segmentation.segmenter import Event, EventKind, Segmenter, VadParams

# Windows per model job: bounds how long one stream's job holds a batch, so a long
# file never delays the live streams batched with it.
MAX_WINDOWS_PER_JOB = 32


@functools.cache
def _window_rows(window: int, context: int) -> np.ndarray:
    """[MAX_WINDOWS_PER_JOB, context + window]: the buffer offsets of each window of a job,
    its context included (rows overlap by `context`)."""
    starts = np.arange(MAX_WINDOWS_PER_JOB)[:, None] * window
    rows = starts + np.arange(context + window)
    rows.flags.writeable = False  # shared by every run
    return rows


@dataclass(frozen=True)
class SpeechEvent:
    """An event with offsets in samples at the input's rate."""

    kind: EventKind
    start: int
    end: int | None
    decided_at: int


class DetectionRun(StreamInput):
    """The state of one detection over one piece or stream of audio."""

    def __init__(self, model: HostedModel, spec: AudioSpec, params: VadParams) -> None:
        detector = model.engine
        assert isinstance(detector, VoiceActivityDetector)
        super().__init__(spec, detector.sample_rate_hz)
        self._model = model
        self._rate = detector.sample_rate_hz
        self._window = detector.window
        self._context = detector.context
        self._segmenter = Segmenter(params, self._rate, self._window)
        self._rows = _window_rows(self._window, self._context)
        # The `context` samples before the next window, then the samples not yet scored.
        self._tail = np.zeros(detector.context, np.float32)
        self._state = detector.initial_state()
        self._model_samples = 0  # samples at the detector's rate received from the decoder

    async def feed(self, data: bytes) -> list[SpeechEvent]:
        return await self._process(await self._decoded(data), final=False)

    async def finish(self) -> list[SpeechEvent]:
        """Processes the tail (zero-padded to a whole window) and ends a pending segment."""
        events = await self._process(self._decoded_tail(), final=True)
        events += self._map(self._segmenter.finish(self._model_samples))
        return events

    async def _process(self, samples: np.ndarray, *, final: bool) -> list[SpeechEvent]:
        self._model_samples += len(samples)
        window, context = self._window, self._context
        unscored = len(self._tail) - context + len(samples)
        padding = -unscored % window if final else 0
        parts = [self._tail, samples]
        if padding:
            parts.append(np.zeros(padding, np.float32))
        buffer = np.concatenate(parts)
        n_windows = (len(buffer) - context) // window
        self._tail = buffer[n_windows * window :].copy()
        events: list[Event] = []
        for first in range(0, n_windows, MAX_WINDOWS_PER_JOB):
            count = min(MAX_WINDOWS_PER_JOB, n_windows - first)
            job = VadJob(self._frames(buffer, first, count), self._state)
            result = await self._model.run(job)
            self._state = result.state
            events += self._segmenter.push_all(result.probabilities.tolist())
        return self._map(events)

    def _frames(self, buffer: np.ndarray, first: int, count: int) -> np.ndarray:
        """[count, context + window]: windows `first`... of the buffer, each behind the
        context samples before it (gathered by index in one copy)."""
        return buffer[first * self._window :].take(self._rows[:count])

    def _map(self, events: list[Event]) -> list[SpeechEvent]:
        return [
            SpeechEvent(
                e.kind,
                self._to_input(e.start),
                None if e.end is None else self._to_input(e.end),
                self._to_input(e.decided_at),
            )
            for e in events
        ]

    def _to_input(self, model_sample: int) -> int:
        rate = self.input_rate_hz or self._rate
        return min(round(model_sample * rate / self._rate), self.samples_in)
