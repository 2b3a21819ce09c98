"""OpenVoice V1 and V2 engines: tone-colour embedding (Embed) and conversion (Convert).

One engine hosts both tasks of a converter checkpoint. Jobs are either an
`EmbedJob` (spectrograms of reference clips → the plain mean of their embeddings) or a
`ConvertJob` (a spectrogram, source and target embeddings, tau and a seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.audio import DecodedAudio, resample
from speechmesh.runtime.engine import Engine, ModelDescription, VoiceInfo
from speechmesh.runtime.errors import NotFound
from speechmesh.runtime.torch_threads import request_threads, use_threads
from speechmesh.services.conversion.conversion.contract import CONVERSION_SERVICE, ToneConverter
from speechmesh.services.conversion.conversion.openvoice.checkpoint import load_converter
from speechmesh.services.conversion.conversion.openvoice.modules import ToneColorConverter
from speechmesh.services.conversion.conversion.openvoice.spectrogram import linear_spectrogram
from speechmesh.services.conversion.embeddings import EmbeddingSpec, Vector
from speechmesh.services.conversion.encoder.contract import require_speech

MIN_REFERENCE_S = 1.0


@dataclass
class EmbedJob:
    spectrograms: list[torch.Tensor]  # each [bins, frames]


@dataclass
class ConvertJob:
    samples: np.ndarray  # at the model's rate
    source: Vector
    target: Vector
    tau: float
    generator: torch.Generator


class OpenVoiceEngine(Engine, ToneConverter):
    tasks = (models_pb2.TASK_VOICE_CONVERSION, models_pb2.TASK_SPEAKER_EMBEDDING)
    service = CONVERSION_SERVICE
    min_speech_s = MIN_REFERENCE_S

    model: ToneColorConverter
    base_speakers: dict[str, np.ndarray]

    @property
    def sample_rate(self) -> int:
        return self.model.config.sampling_rate

    @property
    def hop_length(self) -> int:
        return self.model.config.hop_length

    @property
    def min_source_samples(self) -> int:
        """The shortest clip the spectrogram takes: one hop, and more samples than the
        (filter_length − hop_length) / 2 it reflects at each end."""
        config = self.model.config
        return max(config.hop_length, (config.filter_length - config.hop_length) // 2 + 1)

    def voice_embedding(self, voice: str) -> Vector:
        if voice not in self.base_speakers:
            known = ", ".join(sorted(self.base_speakers)) or "none"
            raise NotFound(f"model {self.config.id!r} has no voice {voice!r} (voices: {known})")
        return self.base_speakers[voice]

    def noise_source(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    def conversion_job(
        self,
        samples: np.ndarray,
        source: Vector,
        target: Vector,
        tau: float,
        noise: torch.Generator,
    ) -> ConvertJob:
        return ConvertJob(samples, source, target, tau, noise)

    def load(self) -> None:
        request_threads(self.config.threads)
        root = self.hub_files(self.config.source or self.default_source).resolve()
        loaded = load_converter(Path(root), self.config.device)
        self.model = loaded.model
        self.base_speakers = loaded.base_speakers
        self.embedding = EmbeddingSpec(self.family, self.model.config.gin_channels)

    def warmup(self) -> None:
        clip = DecodedAudio(np.zeros(self.sample_rate, np.float32), self.sample_rate)
        (vector,) = self.run_batch([self.prepare_embedding([clip])])
        generator = torch.Generator().manual_seed(0)
        self.run_batch([ConvertJob(clip.samples, vector, vector, 0.0, generator)])

    def describe(self) -> ModelDescription:
        voices = tuple(
            VoiceInfo(name, description="base speaker embedding")
            for name in sorted(self.base_speakers)
        )
        return ModelDescription(voices=voices, native_sample_rate_hz=self.sample_rate)

    def prepare_embedding(self, clips: Sequence[DecodedAudio], field: str = "clips") -> EmbedJob:
        require_speech(sum(c.duration_s for c in clips), self.min_speech_s, "audio", field)
        use_threads()
        config = self.model.config
        resampled = [resample(c.samples, c.sample_rate_hz, self.sample_rate) for c in clips]
        # A clip too short for a spectrogram adds nothing (the reference cannot embed it).
        spectrograms = [
            linear_spectrogram(samples, config)
            for samples in resampled
            if len(samples) >= self.min_source_samples
        ]
        return EmbedJob(spectrograms)

    def run_batch(self, items: Sequence[EmbedJob | ConvertJob]) -> list[np.ndarray]:
        use_threads()
        with torch.inference_mode():
            return [
                self._embed(job) if isinstance(job, EmbedJob) else self._convert(job)
                for job in items
            ]

    def _embed(self, job: EmbedJob) -> Vector:
        device = self.config.device
        embeddings = [
            self.model.ref_enc(spec.T.unsqueeze(0).to(device))[0] for spec in job.spectrograms
        ]
        vector: Vector = torch.stack(embeddings).mean(0).cpu().numpy()
        return vector

    def _convert(self, job: ConvertJob) -> np.ndarray:
        device = self.config.device
        spec = linear_spectrogram(job.samples, self.model.config).unsqueeze(0).to(device)
        lengths = torch.tensor([spec.size(2)], device=device)
        inter = self.model.config.inter_channels
        noise = torch.randn((1, inter, spec.size(2)), generator=job.generator).to(device)
        source = torch.from_numpy(job.source).reshape(1, -1, 1).to(device)
        target = torch.from_numpy(job.target).reshape(1, -1, 1).to(device)
        audio = self.model.convert(spec, lengths, source, target, job.tau, noise)
        out: np.ndarray = audio[0, 0].cpu().numpy()
        return out


class OpenVoiceV1(OpenVoiceEngine):
    family = embedding_family = "openvoice-v1"
    accepted_embedding_families = (family,)
    default_source = "myshell-ai/OpenVoice"
    hub_patterns = ("checkpoints/converter/*", "checkpoints/base_speakers/*/*")


class OpenVoiceV2(OpenVoiceEngine):
    family = embedding_family = "openvoice-v2"
    accepted_embedding_families = (family,)
    default_source = "myshell-ai/OpenVoiceV2"
    hub_patterns = ("converter/*", "base_speakers/ses/*")
