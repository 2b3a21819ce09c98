"""The IndexTTS-2 model family on the shared runtime: load a checkpoint, synthesize jobs.

`source` is a folder holding the IndexTeam/IndexTTS-2 files (or that hub repo id,
resolved through the weights cache); the auxiliary models are found under
`<source>/hf_cache` or `options.aux_cache`. There are no embedded weights: a model
without them is FAILED with a FailedPrecondition that names what is missing.
dtype float16/bfloat16 runs the GPT in that precision on CUDA.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime import weights
from speechmesh.runtime.engine import Engine, ModelDescription
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.indextts.layout import locate
from speechmesh.services.indextts.pipeline import EmotionRequest, IndexTTS2, SegmentAudio, Timings
from speechmesh.services.indextts.sampling import SamplingSettings

DTYPES = {
    "float32": torch.float32,
    "auto": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@dataclass
class SynthesisJob:
    text: str
    prompt_audio: np.ndarray
    prompt_rate: int
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    emotion: EmotionRequest | None = None
    max_text_tokens: int = 120
    first_segment_max_tokens: int = 0
    diffusion_steps: int = 25
    cfg_rate: float = 0.7
    seed: int | None = None
    chunk_codes: int = 0
    sink: Callable[[SegmentAudio], None] | None = None
    """Set for a stream: the batcher's thread hands each piece here as it is made (the
    batch result is then an empty list)."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set when the caller has gone: the job stops within a chunk."""


class IndexTTSEngine(Engine):
    family = "indextts2"
    tasks = (models_pb2.TASK_ZERO_SHOT_SYNTHESIS, models_pb2.TASK_SPEECH_SYNTHESIS)
    service = "speechmesh.indextts.v1.IndexTTS"

    pipeline: IndexTTS2

    def load(self) -> None:
        source = self.config.source
        if not source:
            raise FailedPrecondition(
                f"model {self.config.id!r}: IndexTTS-2 ships no embedded weights; set `source` "
                "to a folder holding the IndexTeam/IndexTTS-2 checkpoint (config.yaml, gpt.pth, "
                "s2mel.pth, …, hf_cache/ with w2v-bert-2.0, the MaskGCT semantic codec, "
                "campplus, bigvgan)"
            )
        folder = weights.resolve(source)
        aux = self.config.options.get("aux_cache")
        files = locate(Path(folder), Path(aux) if aux else None)
        dtype = DTYPES.get(self.config.dtype)
        if dtype is None:
            raise FailedPrecondition(
                f"dtype {self.config.dtype!r} is not supported; use one of {sorted(DTYPES)}"
            )
        if dtype != torch.float32 and not self.config.device.startswith("cuda"):
            raise FailedPrecondition(
                f"dtype {self.config.dtype} needs a CUDA device; this model runs on cpu"
            )
        torch.set_num_threads(self.config.threads)
        text_cache = self.config.options.get("text_cache")
        self.pipeline = IndexTTS2(
            files, self.config.device, dtype, Path(text_cache) if text_cache else None
        )
        self._lock = threading.Lock()

    def describe(self) -> ModelDescription:
        return ModelDescription(
            languages=("zh", "en"), native_sample_rate_hz=self.pipeline.sample_rate
        )

    @property
    def sample_rate(self) -> int:
        return self.pipeline.sample_rate

    def stream(self, job: SynthesisJob, timings: Timings | None = None) -> Iterator[SegmentAudio]:
        """Audio pieces in order; each step holds the model lock (one job computes at a time)."""
        generator = torch.Generator(device=self.pipeline.device)
        if job.seed is not None:
            generator.manual_seed(job.seed)
        else:
            generator.seed()
        with self._lock:
            # The reference's draw order: the emotion text model, w2v-BERT's per-layer
            # draws, then the GPT and the flow.
            request = self.pipeline.emotion_from_text(job.emotion, job.text, generator)
            self.pipeline.skip_prompt_draws(generator)
            prompt = self.pipeline.prompt(job.prompt_audio, job.prompt_rate)
            emotion = self.pipeline.emotion_vector(prompt, request, job.text, generator)
            pieces = self.pipeline.segments(
                job.text,
                prompt,
                emotion,
                job.sampling,
                max_tokens=job.max_text_tokens,
                first_max_tokens=job.first_segment_max_tokens,
                steps=job.diffusion_steps,
                cfg_rate=job.cfg_rate,
                generator=generator,
                chunk_codes=job.chunk_codes,
                timings=timings,
                cancelled=job.cancelled,
            )
        try:
            while not job.cancelled.is_set():
                with self._lock:
                    piece = next(pieces, None)
                if piece is None:
                    return
                yield piece
        finally:
            with self._lock:
                pieces.close()

    def run_batch(self, items: Sequence[SynthesisJob]) -> list[list[SegmentAudio]]:
        results: list[list[SegmentAudio]] = []
        for job in items:
            if job.sink is None:
                results.append(list(self.stream(job)))
                continue
            for piece in self.stream(job):
                job.sink(piece)
            results.append([])
        return results
