"""One detection run: decoded audio → the detector's windows → batched model → events.

Detect feeds a whole file at once and StreamingDetect chunk by chunk; both go through
this same path, so they find the same segments. Offsets are mapped back from the
detector's rate to the input's own sample rate.
"""

from __future__ import annotations

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
        self._segmenter = Segmenter(params, self._rate, self._window)
        self._pending = np.zeros(0, np.float32)
        self._context = np.zeros(detector.context, np.float32)
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
        pending = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        window = self._window
        if final and len(pending) % window:
            pending = np.concatenate(
                [pending, np.zeros(window - len(pending) % window, np.float32)]
            )
        n_windows = len(pending) // window
        self._pending = pending[n_windows * window :]
        events: list[Event] = []
        for first in range(0, n_windows, MAX_WINDOWS_PER_JOB):
            count = min(MAX_WINDOWS_PER_JOB, n_windows - first)
            audio = pending[first * window : (first + count) * window]
            result = await self._model.run(VadJob(self._windows(audio, count), self._state))
            self._state = result.state
            for probability in result.probabilities:
                events += self._segmenter.push(float(probability))
        return self._map(events)

    def _windows(self, audio: np.ndarray, count: int) -> np.ndarray:
        """[count, context + window]: each window behind the context samples before it."""
        context = len(self._context)
        with_context = np.concatenate([self._context, audio])
        self._context = audio[-context:].copy()
        # Overlapping rows over one buffer (a strided view), copied once into the batch.
        step = with_context.strides[0]
        frames = np.lib.stride_tricks.as_strided(
            with_context,
            (count, context + self._window),
            (self._window * step, step),
            writeable=False,
        )
        return frames.copy()

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
