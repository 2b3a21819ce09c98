"""Chatterbox's voice encoder: the speaker embedding T3 is conditioned on.

A 16 kHz recording is trimmed of leading and trailing silence (frames 20 dB under the
loudest, as librosa's `effects.trim`), turned into a 40-band power mel spectrogram
(25 ms windows, 10 ms hop, Slaney filters, no log), cut into partial windows of 160
frames 77 frames apart (the reference's rate of 1.3 partials per second), and each
window goes through a 3-layer LSTM, a linear projection, a ReLU and an L2 norm; the
mean of the windows, renormalised, is the utterance's 256-d embedding.

The module names are those of the official `ve.safetensors` (`lstm.*`, `proj.*`, and
the GE2E loss's `similarity_weight` / `similarity_bias`, loaded but unused).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from speechmesh.nn.spectral import slaney_filters

SAMPLE_RATE = 16000
N_MELS = 40
N_FFT = 400
HOP = 160
HIDDEN = 256
EMBEDDING_SIZE = 256
PARTIAL_FRAMES = 160
# round((16000 / 1.3) / 160): the reference's rate of 1.3 partials per second.
FRAME_STEP = 77
MIN_COVERAGE = 0.8
TRIM_TOP_DB = 20.0
TRIM_FRAME = 2048
TRIM_HOP = 512

Samples = npt.NDArray[np.float32]


def trim_silence(wav: Samples, top_db: float = TRIM_TOP_DB) -> Samples:
    """`wav` without its leading and trailing frames quieter than top_db under the
    loudest frame (RMS over 2048 samples every 512, zero-padded at the edges)."""
    padded = np.pad(wav, TRIM_FRAME // 2)
    n_frames = 1 + (len(padded) - TRIM_FRAME) // TRIM_HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, TRIM_FRAME)[::TRIM_HOP][:n_frames]
    power = np.mean(np.abs(frames) ** 2, axis=-1)
    amin = 1e-10
    db = 10.0 * np.log10(np.maximum(amin, power)) - 10.0 * np.log10(max(amin, power.max()))
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0:
        return wav[:0]
    return wav[loud[0] * TRIM_HOP : min(len(wav), (loud[-1] + 1) * TRIM_HOP)]


def partial_count(n_frames: int) -> tuple[int, int]:
    """(windows, frames they span) for n_frames: the last window is kept when it would
    be at least MIN_COVERAGE full, and one window at least is always taken."""
    windows, remainder = divmod(max(n_frames - PARTIAL_FRAMES + FRAME_STEP, 0), FRAME_STEP)
    if windows == 0 or (remainder + PARTIAL_FRAMES - FRAME_STEP) / PARTIAL_FRAMES >= MIN_COVERAGE:
        windows += 1
    return windows, PARTIAL_FRAMES + FRAME_STEP * (windows - 1)


class VoiceEncoder(nn.Module):
    """LSTM speaker encoder; `embed` is the whole path from 16 kHz audio."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, num_layers=3, batch_first=True)
        self.proj = nn.Linear(HIDDEN, EMBEDDING_SIZE)
        # Training-only (the GE2E loss), present in the official checkpoint.
        self.similarity_weight = nn.Parameter(torch.tensor([10.0]))
        self.similarity_bias = nn.Parameter(torch.tensor([-5.0]))
        self.register_buffer(
            "mel_filters", slaney_filters(SAMPLE_RATE, N_FFT, N_MELS, 0.0, None), False
        )
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), False)

    def mel(self, wav: Samples) -> torch.Tensor:
        """[frames, 40] power mel of 16 kHz audio, centred frames with reflected edges."""
        signal = torch.from_numpy(np.ascontiguousarray(wav, np.float32)).to(self.window.device)
        spectrum = torch.stft(
            signal, N_FFT, HOP, window=self.window, center=True, pad_mode="reflect",
            return_complex=True,
        )  # fmt: skip
        power = spectrum.real.square() + spectrum.imag.square()
        return (self.mel_filters @ power).T

    def forward(self, partials: torch.Tensor) -> torch.Tensor:
        """[windows, 160, 40] mel windows to their L2-normed [windows, 256] embeddings."""
        _, (hidden, _) = self.lstm(partials)
        raw = torch.relu(self.proj(hidden[-1]))
        return raw / torch.linalg.norm(raw, dim=1, keepdim=True)

    @torch.inference_mode()
    def embed(self, wav: Samples) -> Samples:
        """The 256-d embedding of one 16 kHz utterance (as embeds_from_wavs)."""
        trimmed = trim_silence(wav)
        if len(trimmed) == 0:
            raise ValueError("the recording is silent")
        mel = self.mel(trimmed)
        windows, span = partial_count(len(mel))
        if span > len(mel):
            mel = torch.cat([mel, mel.new_zeros(span - len(mel), N_MELS)])
        partials = torch.stack(
            [mel[i * FRAME_STEP : i * FRAME_STEP + PARTIAL_FRAMES] for i in range(windows)]
        )
        mean = self(partials).mean(dim=0)
        embedding: Samples = (mean / torch.linalg.norm(mean)).cpu().numpy()
        return embedding
