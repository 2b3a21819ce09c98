"""The contract of a speaker-encoder family (SpeakerEncoder/Embed), without torch.

A restoration-only server (DeepFilterNet, RNNoise) never loads torch: the servicers
depend on the task contracts, and only the engines of torch families import it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from speechmesh.runtime.audio import DecodedAudio
from speechmesh.runtime.errors import InvalidArgument
from speechmesh.services.conversion.embeddings import EmbeddingSpec

ENCODER_SERVICE = "speechmesh.conversion.v1.SpeakerEncoder"


def require_speech(
    seconds: float, minimum: float, what: str = "speech", field: str = "clips"
) -> None:
    if seconds < minimum:
        raise InvalidArgument(
            field, f"the audio holds {seconds:.2f} s of {what}; at least {minimum:.2f} s is needed"
        )


class SpeakerEncoder(ABC):
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
