"""The contract of a tone-colour converter family (VoiceConversion), without torch.

A converter embeds voices with its own encoder, so it is a SpeakerEncoder too. Its
target is what `prepare_target` makes of target audio: by default the voice's
embedding; a converter conditioned on more than a vector (Chatterbox: the target's
speech tokens and mel with its x-vector) makes its own and takes no target embedding.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from speechmesh.runtime.audio import DecodedAudio
from speechmesh.services.conversion.embeddings import Vector
from speechmesh.services.conversion.encoder.contract import SpeakerEncoder

CONVERSION_SERVICE = "speechmesh.conversion.v1.VoiceConversion"


class ToneConverter(SpeakerEncoder):
    """An engine that converts voices (and embeds them with its own encoder)."""

    takes_target_embedding: ClassVar[bool] = True
    """Whether a target may be given as an embedding instead of audio."""

    def prepare_target(self, clips: Sequence[DecodedAudio], field: str) -> Any:
        """A job for run_batch whose result is the target `conversion_job` takes."""
        return self.prepare_embedding(clips, field)

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
        self, samples: np.ndarray, source: Vector, target: Any, tau: float, noise: Any
    ) -> Any:
        """A job for run_batch whose result is `samples` (model rate) in the target voice."""
