"""What AudioRestoration needs from a model, and the options every restoration model takes.

A restoration engine opens one `RestorationStream` per call (the model's state for that
call: a recurrent state, a context buffer); the stream takes whole blocks of samples
at the model's rate and returns as many samples, `delay` samples late. The engine's
`run_batch` runs `BlockJob`s, each on its own stream, in the model's thread. Restore
and StreamingRestore both go through `RestorationRun` (restoration_run.py), so a file
and a stream of it give the same audio, except for models that set `segment_samples`
(VoiceFixer): their Restore follows the original's whole-file segmentation.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from speechmesh.conversion.v1 import conversion_pb2
from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.engine import Engine
from speechmesh.runtime.errors import InvalidArgument, Unavailable
from speechmesh.runtime.numbers import number_option

RESTORATION_SERVICE = "speechmesh.conversion.v1.AudioRestoration"


@dataclass(frozen=True)
class RestorationParams:
    """Validated restoration options."""

    attenuation_limit_db: float | None = None
    post_filter_beta: float = 0.0
    voicefixer_mode: int = 0


class RestorationStream(ABC):
    """One call's model state. Thread-safe to close while the model thread uses it."""

    block: int
    """Samples (at the model's rate) per processing step."""
    delay: int
    """Output sample n + delay lines up with input sample n."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Restores whole blocks (len(samples) a multiple of `block`), in the model's thread."""
        with self._lock:
            if self._closed:
                raise Unavailable("the restoration stream was closed")
            return self._process(samples)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._free()

    @abstractmethod
    def _process(self, samples: np.ndarray) -> np.ndarray: ...

    def _free(self) -> None:  # noqa: B027 - optional hook
        """Releases native resources."""


@dataclass
class BlockJob:
    """Whole blocks of one stream, to run through that stream's state."""

    stream: RestorationStream
    samples: np.ndarray


@dataclass
class SegmentJob:
    """One segment of a whole Restore input, restored on its own (no stream state), for
    models whose original cuts a file into independent segments (`segment_samples`)."""

    samples: np.ndarray
    params: RestorationParams


class Restorer(Engine):
    """A restoration model; subclasses open streams."""

    tasks = (models_pb2.TASK_AUDIO_RESTORATION,)
    service = RESTORATION_SERVICE
    sample_rate: ClassVar[int]
    option_family: ClassVar[str | None] = None
    """Which RestorationOptions.family_options case this model takes (None: none)."""
    native_attenuation_limit: ClassVar[bool] = False
    """True when the model applies attenuation_limit_db itself."""
    segment_samples: ClassVar[int | None] = None
    """Set for a model whose original restores a file in independent segments of this
    many samples (model rate): Restore then cuts the whole input that way and runs each
    segment through `restore_segment`, instead of streaming it; StreamingRestore still
    streams. None: Restore takes the streaming path."""

    @abstractmethod
    def open_stream(self, params: RestorationParams) -> RestorationStream:
        """A fresh state for one call; may be slow (it runs off the event loop)."""

    def restore_segment(self, samples: np.ndarray, params: RestorationParams) -> np.ndarray:
        """One segment of a whole input (`segment_samples` models), in the model's thread."""
        raise NotImplementedError(f"{type(self).__name__} restores streams only")

    _workers: ThreadPoolExecutor | None = None

    def run_batch(self, items: Sequence[BlockJob]) -> list[np.ndarray]:
        """Each job on its own stream's state. With `threads` > 1 the jobs of different
        streams run side by side: the native libraries release the GIL while they work."""
        if self.config.threads == 1 or len(items) == 1:
            return [job.stream.process(job.samples) for job in items]
        if self._workers is None:
            self._workers = ThreadPoolExecutor(
                self.config.threads, thread_name_prefix=self.config.id
            )
        return list(self._workers.map(lambda job: job.stream.process(job.samples), items))

    def close(self) -> None:
        if self._workers is not None:
            self._workers.shutdown(wait=True)


def restoration_params(
    options: conversion_pb2.RestorationOptions, engine: Restorer, field: str
) -> RestorationParams:
    """The validated options for `engine`; another family's options are INVALID_ARGUMENT."""
    limit = None
    if options.HasField("attenuation_limit_db"):
        limit = number_option(
            options.attenuation_limit_db, f"{field}.attenuation_limit_db", above=0
        )
    family = options.WhichOneof("family_options")
    if family is not None and family != engine.option_family:
        raise InvalidArgument(
            f"{field}.{family}",
            f"options for another model family; model family {engine.family!r} takes "
            + (f"{engine.option_family}" if engine.option_family else "no family options"),
        )
    beta = number_option(
        options.deep_filter_net.post_filter_beta,
        f"{field}.deep_filter_net.post_filter_beta",
        at_least=0.0,
        at_most=1.0,
    )
    mode = options.voice_fixer.mode
    if mode not in (0, 1, 2):
        raise InvalidArgument(f"{field}.voice_fixer.mode", f"must be 0, 1 or 2, got {mode}")
    return RestorationParams(limit, beta, mode)
