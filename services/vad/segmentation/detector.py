"""The contract of a voice activity model family, on top of the runtime's Engine.

A detector scores fixed windows of mono float32 audio at its own rate, each window
behind `context` samples of the audio before it, with a recurrent state per stream
that the caller keeps: jobs of many streams run as one batch, each row with its own
state. Everything else (decoding, resampling, windowing, hysteresis, padding, events)
is the segmentation's, the same for every family.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.engine import Engine

VOICE_ACTIVITY = "speechmesh.vad.v1.VoiceActivity"


@dataclass
class VadJob:
    """Consecutive windows of one stream and the stream's recurrent state before them."""

    windows: np.ndarray
    """[n, context + window] float32."""
    state: np.ndarray


@dataclass
class VadResult:
    probabilities: np.ndarray
    """[n] float32: the speech probability of each window."""
    state: np.ndarray
    """The stream's state after its last window."""


class VoiceActivityDetector(Engine):
    """One loaded voice activity model."""

    service: ClassVar[str] = VOICE_ACTIVITY
    tasks: ClassVar[tuple[models_pb2.Task.ValueType, ...]] = (
        models_pb2.TASK_VOICE_ACTIVITY_DETECTION,
    )
    sample_rate_hz: ClassVar[int]
    window: ClassVar[int]
    """Samples per scored window."""
    context: ClassVar[int]
    """Samples of the audio before a window that the model sees with it."""

    @abstractmethod
    def initial_state(self) -> np.ndarray:
        """The recurrent state of a new stream."""

    @abstractmethod
    def run_batch(self, items: Sequence[VadJob]) -> list[VadResult]:
        """Scores the windows of several streams as one batch; one result per job."""
