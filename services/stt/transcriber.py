"""The contract of a speech-to-text model family, on top of the runtime's Engine.

The STT servicer and its streams speak only to this contract: a Transcriber decodes
jobs of up to `window_samples` of 16 kHz mono float32 audio, each with its own prompt
and prefix, batched across callers by the model's DynamicBatcher. The service does
everything around that: decoding and resampling the caller's audio, cutting long
audio at the VAD's pauses, endpointing streams, interim results and word offsets.
A family implements:

- `load()` (from Engine): find and load its files; FailedPrecondition when missing;
- `languages` and `multilingual`: what it recognises, and whether it translates;
- `check_settings(settings, field)`: InvalidArgument for settings it cannot honour;
- `resampler(rate_hz)`: a caller's audio to the model's 16 kHz, chunk by chunk, as the
  family's own reference makes it (the audio a model hears changes its transcripts);
- `run_batch(jobs)`: one DecodeResult per DecodeJob, in order.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.engine import Engine

SPEECH_TO_TEXT = "speechmesh.stt.v1.SpeechToText"
SAMPLE_RATE = 16000
"""The rate of the audio in every DecodeJob and of every offset a result gives."""


@dataclass(frozen=True)
class DecodeSettings:
    """How to decode; jobs with equal settings share model calls."""

    language: str | None = None
    """None: detect it (multilingual models only)."""
    task: str = "transcribe"
    beam_size: int = 5
    best_of: int = 5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    word_timestamps: bool = False
    without_timestamps: bool = False
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    patience: float = 1.0
    length_penalty: float = 1.0


@dataclass(frozen=True)
class DecodeJob:
    """Up to 30 s of 16 kHz mono audio and what to tell the decoder about it."""

    audio: np.ndarray
    settings: DecodeSettings
    prompt: str = ""
    """Earlier text (initial prompt or previous chunk) the decoder sees as context."""
    prefix: str = ""
    """Text the transcript must start with (a stream's committed words)."""
    hotwords: str = ""


@dataclass
class DecodedWord:
    word: str
    start_s: float
    end_s: float
    probability: float


@dataclass
class DecodedSegment:
    """Times in seconds from the start of the job's audio."""

    text: str
    start_s: float
    end_s: float
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    words: list[DecodedWord] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list, repr=False)
    """The segment's token ids, timestamps included (what word alignment needs)."""


@dataclass
class DecodeResult:
    segments: list[DecodedSegment]
    language: str
    language_probability: float
    skipped_as_silence: bool = False

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()


class Resampler(Protocol):
    """A caller's audio, fed in chunks, at the model's rate."""

    def feed(self, samples: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray:
        """What it still holds (its filter delay), once the audio has ended."""
        ...


class Transcriber(Engine):
    """One loaded speech-to-text model."""

    service: ClassVar[str] = SPEECH_TO_TEXT
    tasks: ClassVar[tuple[models_pb2.Task.ValueType, ...]] = (models_pb2.TASK_SPEECH_RECOGNITION,)
    window_samples: ClassVar[int]
    """The longest audio one job may hold (16 kHz samples); longer audio is cut."""

    @property
    @abstractmethod
    def multilingual(self) -> bool:
        """Whether it detects languages and translates (an English-only model does not)."""

    @property
    @abstractmethod
    def languages(self) -> tuple[str, ...]:
        """The language codes it recognises."""

    @abstractmethod
    def check_settings(self, settings: DecodeSettings, field: str) -> None:
        """InvalidArgument (fields under `field`) for settings this model cannot honour."""

    @abstractmethod
    def resampler(self, rate_hz: int) -> Resampler:
        """Audio at `rate_hz` to SAMPLE_RATE, chunk by chunk."""

    @abstractmethod
    def run_batch(self, items: Sequence[DecodeJob]) -> list[DecodeResult]:
        """Decodes several jobs as one model call; one result per job, in order."""

    def model_audio(self, samples: np.ndarray, rate_hz: int) -> np.ndarray:
        """A whole request's audio at the model's rate (blocking: call it off the loop)."""
        resampler = self.resampler(rate_hz)
        return np.concatenate([resampler.feed(samples), resampler.flush()])
