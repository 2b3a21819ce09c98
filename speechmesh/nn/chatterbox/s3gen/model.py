"""S3Gen (S3Token2Wav): speech tokens + a reference voice → 24 kHz audio, one batch of rows.

The module tree is the official one, so s3gen.safetensors loads key for key:
`tokenizer.*` (S3 tokenizer), `speaker_encoder.*` (CAM++), `flow.*` (token → mel),
`mel2wav.*` (HiFT).

`embed_ref` turns a 24 kHz reference into a `Reference` (the reference's `ref_dict`):
its 24 kHz mel (80 bins, hop 480, n_fft 1920, 0–8 kHz, log of the magnitude), its S3
tokens and CAM++ x-vector, both from the reference resampled to 16 kHz with
torchaudio's default sinc resampler; the tokens are cut to len(mel) / 2 when they
are longer (the reference's rule; a longer mel is kept as it is).

`generate` runs rows together (the flow batched, the vocoder row by row) and returns
each row's audio and the draws it used. Randomness is per row: a row's noise comes
from its own generator (or is given), drawn in the reference's order, so that a row
seeded like the reference's global RNG reproduces it, and its audio never depends on
the batch. The first 20 ms of every output are silenced and the next 20 ms faded in
(raised cosine), as the reference does against spill-over from the prompt.
Chatterbox's Perth watermark is not applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from speechmesh.nn.campplus import CAMPPlus
from speechmesh.nn.chatterbox.s3gen.config import (
    MEL_BINS,
    SAMPLE_RATE,
    TOKEN_MEL_RATIO,
    S3GenConfig,
)
from speechmesh.nn.chatterbox.s3gen.flow import FlowRow, Token2Mel
from speechmesh.nn.chatterbox.s3gen.hift import HiFTGenerator, SourceNoise
from speechmesh.nn.chatterbox.s3tokenizer import SAMPLE_RATE as TOKENIZER_RATE
from speechmesh.nn.chatterbox.s3tokenizer import S3Tokenizer
from speechmesh.nn.spectral import kaldi_fbank, reference_mel, sinc_resample

MEL_HOP = 480
MEL_FFT = 1920
REFERENCE_SECONDS = 10  # the reference keeps the first 10 s of a voice for S3Gen


@dataclass(frozen=True)
class Reference:
    """A voice as S3Gen conditions on it (the reference's `ref_dict`)."""

    prompt_tokens: torch.Tensor  # (P,) int64 S3 tokens of the reference
    prompt_mel: torch.Tensor  # (F, 80) its 24 kHz mel
    embedding: torch.Tensor  # (192,) its CAM++ x-vector

    @classmethod
    def from_ref_dict(cls, ref: Mapping[str, Any]) -> Reference:
        """From the reference's dict (conds.pt's `gen`: prompt_token (1, P),
        prompt_feat (1, F, 80), embedding (1, 192); lengths are implied)."""
        missing = [k for k in ("prompt_token", "prompt_feat", "embedding") if k not in ref]
        if missing:
            raise ValueError(f"S3Gen reference lacks {', '.join(missing)}")
        tokens = torch.as_tensor(ref["prompt_token"]).reshape(-1).long()
        mel = torch.as_tensor(ref["prompt_feat"]).float()
        mel = mel.reshape(mel.shape[-2], mel.shape[-1])
        embedding = torch.as_tensor(ref["embedding"]).float().reshape(-1)
        return cls(tokens, mel, embedding)


@dataclass(frozen=True)
class Row:
    """One request to `generate`: new speech tokens (< 6561) and a voice.

    `noise` (80, 2·(P + N)) and `source` replace the draws from `generator` (tests
    inject the reference's recorded draws)."""

    tokens: torch.Tensor
    reference: Reference
    generator: torch.Generator | None = None
    noise: torch.Tensor | None = None
    source: SourceNoise | None = None


@dataclass(frozen=True)
class Output:
    audio: torch.Tensor  # (samples,) float32 at 24 kHz
    mel: torch.Tensor  # (80, frames) the flow's output
    noise: torch.Tensor  # the ODE's starting point it used
    source: SourceNoise  # the vocoder's draws it used


def trim_fade(device: torch.device) -> torch.Tensor:
    n = SAMPLE_RATE // 50
    fade = torch.zeros(2 * n, device=device)
    fade[n:] = (torch.cos(torch.linspace(math.pi, 0, n, device=device)) + 1) / 2
    return fade


class S3Gen(nn.Module):
    def __init__(self, config: S3GenConfig | None = None) -> None:
        super().__init__()
        self.config = config or S3GenConfig()
        self.tokenizer = S3Tokenizer(self.config.tokenizer)
        self.speaker_encoder = CAMPPlus(self.config.campplus)
        self.flow = Token2Mel(self.config)
        self.mel2wav = HiFTGenerator(self.config.hift)
        self.register_buffer("trim_fade", trim_fade(torch.device("cpu")), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.flow.input_embedding.weight.device

    # ------------------------------------------------------------------ reference

    def reference_mel(self, wav_24k: torch.Tensor) -> torch.Tensor:
        """(samples,) 24 kHz → (samples // 480, 80) log mel."""
        mel = reference_mel(
            wav_24k[None], SAMPLE_RATE, MEL_FFT, MEL_HOP, MEL_FFT, MEL_BINS, 0, 8000
        )
        return mel[0].T

    def xvector(self, wav_16k: torch.Tensor) -> torch.Tensor:
        """(samples,) 16 kHz → (192,) CAM++ x-vector (mean-normalised Kaldi fbank)."""
        fbank = kaldi_fbank(wav_16k.float().cpu()).to(self.device)
        return self.speaker_encoder((fbank - fbank.mean(dim=0, keepdim=True))[None])[0]

    @torch.inference_mode()
    def embed_ref(self, wav_24k: np.ndarray | torch.Tensor) -> Reference:
        """A 24 kHz mono reference (the caller keeps at most 10 s) → its `Reference`."""
        wav = torch.as_tensor(np.asarray(wav_24k, dtype=np.float32)).reshape(-1)
        mel = self.reference_mel(wav.to(self.device))
        wav16 = torch.from_numpy(sinc_resample(wav.cpu().numpy(), SAMPLE_RATE, TOKENIZER_RATE))
        embedding = self.xvector(wav16)
        tokens, lengths = self.tokenizer.tokenize([wav16.to(self.device)])
        tokens = tokens[0, : int(lengths[0])]
        if mel.shape[0] != TOKEN_MEL_RATIO * len(tokens):
            tokens = tokens[: mel.shape[0] // TOKEN_MEL_RATIO]
        return Reference(tokens, mel, embedding)

    # ------------------------------------------------------------------ synthesis

    def draw_noise(self, row: Row) -> torch.Tensor:
        """The ODE's start, drawn as the reference draws it (turbo's order included)."""
        frames = TOKEN_MEL_RATIO * (len(row.reference.prompt_tokens) + len(row.tokens))
        new = TOKEN_MEL_RATIO * len(row.tokens)
        g, device = row.generator, self.device
        if not self.config.meanflow:
            return torch.randn(1, MEL_BINS, frames, generator=g, device=device)[0]
        # Turbo draws the new frames' noise first, then a whole-length draw whose
        # prompt part is kept.
        tail = torch.randn(1, MEL_BINS, new, generator=g, device=device)[0]
        whole = torch.randn(1, MEL_BINS, frames, generator=g, device=device)[0]
        return torch.cat([whole[:, : frames - new], tail], dim=1)

    @torch.inference_mode()
    def generate(self, rows: Sequence[Row], steps: int | None = None) -> list[Output]:
        """Each row's 24 kHz audio; steps defaults to 10 (2 for meanflow)."""
        steps = steps or self.config.cfm_steps
        for i, row in enumerate(rows):
            if row.tokens.numel() == 0:
                raise ValueError(f"row {i} has no speech tokens")
            if int(row.tokens.max()) >= self.config.vocab_size or int(row.tokens.min()) < 0:
                raise ValueError(f"row {i} has tokens outside [0, {self.config.vocab_size})")
        noises = [row.noise if row.noise is not None else self.draw_noise(row) for row in rows]
        flow_rows = [
            FlowRow(
                tokens=row.tokens.reshape(-1),
                prompt_tokens=row.reference.prompt_tokens,
                prompt_mel=row.reference.prompt_mel,
                embedding=row.reference.embedding,
                noise=noise,
            )
            for row, noise in zip(rows, noises, strict=True)
        ]
        mels = self.flow(flow_rows, steps)
        outputs = []
        harmonics = self.config.hift.nb_harmonics
        for row, noise, mel in zip(rows, noises, mels, strict=True):
            samples = mel.shape[1] * self.mel2wav.upsample
            draws = row.source or SourceNoise.draw(harmonics, samples, row.generator, self.device)
            audio, _ = self.mel2wav(mel, draws)
            fade = self.trim_fade[: audio.shape[0]]
            audio = torch.cat([audio[: fade.shape[0]] * fade, audio[fade.shape[0] :]])
            outputs.append(Output(audio, mel, noise, draws))
        return outputs
