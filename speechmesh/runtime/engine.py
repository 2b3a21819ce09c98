"""The contract every model family implements: load, warm up, run a batch, describe itself.

An engine is built from its ModelConfig, loads its weights in `load()` (blocking; the
pool calls it off the event loop), proves itself in `warmup()`, and does its work in
`run_batch()`, which the model's DynamicBatcher calls with concurrent requests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.config import ModelConfig


@dataclass(frozen=True)
class VoiceInfo:
    """A voice a synthesis model offers."""

    id: str
    display_name: str = ""
    languages: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ModelDescription:
    """What a loaded model reports through Models/ListModels."""

    languages: tuple[str, ...] = ()
    voices: tuple[VoiceInfo, ...] = ()
    native_sample_rate_hz: int = 0


class Engine(ABC):
    """One loaded model of one family."""

    family: ClassVar[str]
    tasks: ClassVar[tuple[models_pb2.Task.ValueType, ...]]
    service: ClassVar[str]
    """Full name of the gRPC service that serves this engine's tasks."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    @abstractmethod
    def load(self) -> None:
        """Resolves and loads weights. Raises FailedPrecondition when they are missing."""

    def warmup(self) -> None:  # noqa: B027 - optional hook, nothing to warm by default
        """Runs the model once on dummy input so the first request pays no start-up cost."""

    @abstractmethod
    def describe(self) -> ModelDescription:
        """Languages, voices and native rate, once loaded."""

    @abstractmethod
    def run_batch(self, items: Sequence[Any]) -> Sequence[Any]:
        """Runs several requests as one model call; one result per item, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Frees the model's resources."""
