"""The GE2E speaker-encoder engines: resemblyzer's weights and the HarmonySpeech V1 encoder."""

from __future__ import annotations

import itertools
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime import weights
from speechmesh.runtime.audio import DecodedAudio
from speechmesh.runtime.engine import Engine, ModelDescription
from speechmesh.runtime.torch_threads import request_threads, use_threads
from speechmesh.services.conversion.embeddings import EmbeddingSpec, Vector
from speechmesh.services.conversion.encoder.contract import (
    ENCODER_SERVICE,
    SpeakerEncoder,
    require_speech,
)
from speechmesh.services.conversion.encoder.ge2e import modules as ge2e


@dataclass
class Ge2eJob:
    """The partial mel windows of every clip of one request."""

    windows: np.ndarray  # [n, PARTIAL_FRAMES, n_mels] float32


class Ge2eEngine(Engine, SpeakerEncoder):
    """A GE2E encoder; the subclasses differ in where weights come from and preprocessing."""

    tasks = (models_pb2.TASK_SPEAKER_EMBEDDING,)
    service = ENCODER_SERVICE
    preprocessing: ClassVar[ge2e.Preprocessing]
    min_speech_s = ge2e.RESEMBLYZER_PREPROCESSING.min_speech_s

    encoder: ge2e.Ge2eEncoder
    front_end: ge2e.MelFrontEnd

    @abstractmethod
    def load_encoder(self) -> ge2e.Ge2eEncoder: ...

    def load(self) -> None:
        request_threads(self.config.threads)
        self.encoder = self.load_encoder()
        config = self.encoder.config
        self.front_end = ge2e.MelFrontEnd(config.mel_n_channels, self.preprocessing.mel_pad_mode)
        self.embedding = EmbeddingSpec(self.embedding_family, config.model_embedding_size)

    def warmup(self) -> None:
        clip = DecodedAudio(np.zeros(ge2e.SAMPLE_RATE * 2, np.float32), ge2e.SAMPLE_RATE)
        windows = ge2e.partial_mels(clip.samples, self.front_end, self.preprocessing.partial_step)
        self.run_batch([Ge2eJob(windows)])

    def describe(self) -> ModelDescription:
        return ModelDescription(native_sample_rate_hz=ge2e.SAMPLE_RATE)

    def prepare_embedding(self, clips: Sequence[DecodedAudio], field: str = "clips") -> Ge2eJob:
        use_threads()
        speech = [ge2e.preprocess(c.samples, c.sample_rate_hz, self.preprocessing) for c in clips]
        total = sum(len(wav) for wav in speech) / ge2e.SAMPLE_RATE
        require_speech(total, self.min_speech_s, "speech after removing silence", field)
        step = self.preprocessing.partial_step
        windows = [ge2e.partial_mels(wav, self.front_end, step) for wav in speech if len(wav)]
        return Ge2eJob(np.concatenate(windows))

    def run_batch(self, items: Sequence[Ge2eJob]) -> list[Vector]:
        """All windows of all jobs in one forward pass; each job's mean, renormalised."""
        use_threads()
        partials = ge2e.embed_windows(
            self.encoder, np.concatenate([job.windows for job in items]), self.config.device
        )
        bounds = np.cumsum([0] + [len(job.windows) for job in items])
        return [
            ge2e.speaker_embedding(partials[start:end]) for start, end in itertools.pairwise(bounds)
        ]


class ResemblyzerEncoder(Ge2eEngine):
    """GE2E with the trained weights shipped in the resemblyzer wheel (the embedded default)."""

    family = "ge2e-resemblyzer"
    embedding_family = "ge2e-resemblyzer"
    preprocessing = ge2e.RESEMBLYZER_PREPROCESSING
    hub_patterns = ("*.pt",)

    def load_encoder(self) -> ge2e.Ge2eEncoder:
        if self.config.source is None:
            return ge2e.load_resemblyzer(self.config.device)
        path = self.hub_files(self.config.source).resolve()
        checkpoint = path if path.is_file() else weights.require_files(path, ["pretrained.pt"])[0]
        return ge2e.load_checkpoint(ge2e.Ge2eConfig(), checkpoint, self.config.device)


class HarmonySpeechEncoder(Ge2eEngine):
    """The HarmonySpeech V1 encoder; its embeddings condition the HarmonySpeech synthesizer."""

    family = "harmonyspeech-v1-encoder"
    embedding_family = "harmonyspeech-v1"
    preprocessing = ge2e.HARMONYSPEECH_PREPROCESSING
    min_speech_s = ge2e.HARMONYSPEECH_PREPROCESSING.min_speech_s
    default_source = "harmony-ai/harmony-speech-v1"
    hub_patterns = ("encoder/*",)

    def load_encoder(self) -> ge2e.Ge2eEncoder:
        root = self.hub_files(self.config.source or self.default_source).resolve()
        return ge2e.load_harmonyspeech(Path(root), self.config.device)
