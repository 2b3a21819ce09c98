"""What the conversion servicers need from a model, per task, without importing torch.

A restoration-only server (DeepFilterNet, RNNoise) never loads torch: the servicers
depend on these contracts, and only the engines of torch families import it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from speechmesh.runtime.audio import DecodedAudio
from speechmesh.runtime.errors import InvalidArgument
from speechmesh.services.conversion.embeddings import EmbeddingSpec, Vector

ENCODER_SERVICE = "speechmesh.conversion.v1.SpeakerEncoder"
CONVERSION_SERVICE = "speechmesh.conversion.v1.VoiceConversion"


def require_speech(
    seconds: float, minimum: float, what: str = "speech", field: str = "clips"
) -> None:
    if seconds < minimum:
        raise InvalidArgument(
            field, f"the audio holds {seconds:.2f} s of {what}; at least {minimum:.2f} s is needed"
        )


class SpeakerEncoding(ABC):
    """An engine that embeds voices; `embedding` is set when the model is loaded.

    `prepare_embedding` runs off the model's thread (resampling, trimming,
    spectrograms); the engine's run_batch turns the job it returns into a vector.
    """

    embedding: EmbeddingSpec
    min_speech_s: ClassVar[float]

    @abstractmethod
    def prepare_embedding(self, clips: Sequence[DecodedAudio], field: str = "clips") -> Any:
        """A job for run_batch from decoded clips of one voice; InvalidArgument (on
        `field`) when the clips hold less than min_speech_s of speech."""


class VoiceConverter(SpeakerEncoding):
    """An engine that converts voices (and embeds them with its own encoder)."""

    @property
    @abstractmethod
    def sample_rate(self) -> int: ...

    @property
    @abstractmethod
    def hop_length(self) -> int:
        """Output samples per frame: a source of n samples gives n // hop_length frames."""

    @property
    @abstractmethod
    def min_source_samples(self) -> int:
        """The shortest source the model converts; shorter ones are padded with silence."""

    @abstractmethod
    def voice_embedding(self, voice: str) -> Vector:
        """The stored embedding of one of the model's voices; NotFound naming the voices."""

    @abstractmethod
    def noise_source(self, seed: int) -> Any:
        """The random state of one call, seeded: successive jobs draw from it in turn."""

    @abstractmethod
    def conversion_job(
        self, samples: np.ndarray, source: Vector, target: Vector, tau: float, noise: Any
    ) -> Any:
        """A job for run_batch whose result is `samples` (model rate) in the target voice."""
