"""OpenVoice's linear magnitude spectrogram, as the converter was trained on."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from speechmesh.services.conversion.conversion.openvoice.config import ConverterConfig


def linear_spectrogram(samples: np.ndarray, config: ConverterConfig) -> torch.Tensor:
    """[bins, frames]: reflect-padded by (n_fft − hop) / 2 on each side, uncentred STFT,
    periodic Hann window, magnitude sqrt(re² + im² + 1e-6); frames = len // hop."""
    signal = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    pad = (config.filter_length - config.hop_length) // 2
    padded = F.pad(signal[None, None], (pad, pad), mode="reflect")[0]
    spectrum = torch.stft(
        padded,
        config.filter_length,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=torch.hann_window(config.win_length),
        center=False,
        return_complex=True,
    )[0]
    return torch.sqrt(spectrum.real.square() + spectrum.imag.square() + 1e-6)
