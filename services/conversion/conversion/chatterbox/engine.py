"""chatterbox-vc: voice conversion with Chatterbox's S3Gen (Convert, StreamingConvert, Embed).

The source's S3 speech tokens (its words and timing) are re-voiced by S3Gen with the
target's conditionals, as the reference's ChatterboxVC does:
  * the source reaches the engine at 24 kHz (the servicer resamples it, soxr HQ) and is
    resampled to 16 kHz as librosa does for the tokenizer (the reference's
    librosa.load(sr=16000) from a 24 kHz file: soxr HQ and librosa's length);
  * the target audio is resampled to 24 kHz as librosa.load(sr=24000) does, cut to
    its first 10 s and embedded by `S3Gen.embed_ref` (mel, tokens, x-vector);
  * the options' seed seeds the request's generator (the reference's
    torch.manual_seed); tau does not apply; there is no watermark;
  * the output (a whole number of 40 ms tokens) is cut to the source's length by the
    servicer.
A target embedding cannot stand in for target audio (S3Gen conditions on the target's
tokens and mel too); Embed returns the CAM++ x-vector (the mean over the clips).
Convert jobs of one batch run through S3Gen together, each row with its own voice and
generator, so batching never changes a row's audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from speechmesh.models.v1 import models_pb2
from speechmesh.nn.chatterbox.s3gen import STANDARD_FILE, Reference, Row, S3Gen, load_s3gen
from speechmesh.nn.chatterbox.s3gen.config import SAMPLE_RATE
from speechmesh.nn.chatterbox.s3tokenizer import SAMPLE_RATE as TOKEN_RATE
from speechmesh.nn.spectral import sinc_resample
from speechmesh.runtime.audio import DecodedAudio, resample_as_librosa
from speechmesh.runtime.engine import Engine, ModelDescription
from speechmesh.runtime.errors import NotFound
from speechmesh.runtime.torch_threads import request_threads, use_threads
from speechmesh.services.conversion.conversion.contract import CONVERSION_SERVICE, ToneConverter
from speechmesh.services.conversion.embeddings import EmbeddingSpec, Vector
from speechmesh.services.conversion.encoder.contract import require_speech

MIN_SPEECH_S = 0.5
TARGET_SECONDS = 10  # ChatterboxVC.DEC_COND_LEN
TOKEN_SAMPLES = 960  # one 25 Hz token at 24 kHz


@dataclass
class TargetJob:
    samples: np.ndarray  # 24 kHz, at most 10 s


@dataclass
class EmbedJob:
    clips: list[np.ndarray]  # 24 kHz


@dataclass
class ConvertJob:
    samples: np.ndarray  # 24 kHz source
    target: Reference
    generator: torch.Generator


class ChatterboxVC(Engine, ToneConverter):
    family = embedding_family = "chatterbox-vc"
    accepted_embedding_families = (family,)
    tasks = (models_pb2.TASK_VOICE_CONVERSION, models_pb2.TASK_SPEAKER_EMBEDDING)
    service = CONVERSION_SERVICE
    min_speech_s = MIN_SPEECH_S
    takes_target_embedding = False
    default_source = "ResembleAI/chatterbox"
    hub_patterns = (STANDARD_FILE,)

    model: S3Gen

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def hop_length(self) -> int:
        return TOKEN_SAMPLES

    @property
    def min_source_samples(self) -> int:
        return TOKEN_SAMPLES

    def voice_embedding(self, voice: str) -> Vector:
        raise NotFound(f"model {self.config.id!r} has no stored voices (give the source's audio)")

    def noise_source(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    def conversion_job(
        self,
        samples: np.ndarray,
        source: Vector,
        target: Reference,
        tau: float,
        noise: torch.Generator,
    ) -> ConvertJob:
        return ConvertJob(samples, target, noise)

    def load(self) -> None:
        request_threads(self.config.threads)
        root = self.hub_files(self.config.source or self.default_source).resolve()
        self.model = load_s3gen(root / STANDARD_FILE, device=self.config.device)
        self.embedding = EmbeddingSpec(self.family, self.model.config.campplus.embedding_size)

    def warmup(self) -> None:
        second = np.zeros(SAMPLE_RATE, np.float32)
        (target,) = self.run_batch([TargetJob(second)])
        self.run_batch([ConvertJob(second, target, torch.Generator().manual_seed(0))])

    def describe(self) -> ModelDescription:
        return ModelDescription(native_sample_rate_hz=SAMPLE_RATE)

    def _at_24k(self, clips: Sequence[DecodedAudio], field: str) -> list[np.ndarray]:
        require_speech(sum(c.duration_s for c in clips), self.min_speech_s, "audio", field)
        return [resample_as_librosa(c.samples, c.sample_rate_hz, SAMPLE_RATE) for c in clips]

    def prepare_target(self, clips: Sequence[DecodedAudio], field: str) -> TargetJob:
        (samples,) = self._at_24k(clips[:1], field)
        return TargetJob(samples[: TARGET_SECONDS * SAMPLE_RATE])

    def prepare_embedding(self, clips: Sequence[DecodedAudio], field: str = "clips") -> EmbedJob:
        return EmbedJob(self._at_24k(clips, field))

    def run_batch(self, items: Sequence[TargetJob | EmbedJob | ConvertJob]) -> list[object]:
        use_threads()
        results: list[object] = [None] * len(items)
        converts = [i for i, job in enumerate(items) if isinstance(job, ConvertJob)]
        with torch.inference_mode():
            for i, job in enumerate(items):
                if isinstance(job, TargetJob):
                    results[i] = self.model.embed_ref(job.samples)
                elif isinstance(job, EmbedJob):
                    results[i] = self._embed(job)
            if converts:
                jobs = [items[i] for i in converts]
                for i, audio in zip(converts, self._convert(jobs), strict=True):  # type: ignore[arg-type]
                    results[i] = audio
        return results

    def _embed(self, job: EmbedJob) -> Vector:
        vectors = [
            self.model.xvector(torch.from_numpy(sinc_resample(c, SAMPLE_RATE, TOKEN_RATE)))
            for c in job.clips
        ]
        vector: Vector = torch.stack(vectors).mean(0).cpu().numpy().astype(np.float32)
        return vector

    def _convert(self, jobs: Sequence[ConvertJob]) -> list[np.ndarray]:
        rows = []
        for job in jobs:
            # One source at a time: a padded batch could round a token differently.
            source = torch.from_numpy(resample_as_librosa(job.samples, SAMPLE_RATE, TOKEN_RATE))
            tokens, lengths = self.model.tokenizer.tokenize([source])
            rows.append(Row(tokens[0, : int(lengths[0])], job.target, job.generator))
        return [out.audio.cpu().numpy() for out in self.model.generate(rows)]
