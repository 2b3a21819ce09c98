"""Spectral front-ends shared by families: the Matcha/BigVGAN-style log mel (librosa
Slaney filters), Kaldi fbank and torchaudio's default sinc resampler.

IndexTTS-2 (22.05 kHz mel, CAM++ fbank) and Chatterbox's S3Gen (24 kHz mel, CAM++
fbank, the 24 → 16 kHz reference resampling) compute the same features. Written here
because torchaudio has no build for the pinned torch. They follow the references
numerically: the mel is reflect-padded by (n_fft − hop)/2 each side, STFT
without centring, magnitude √(re² + im² + 1e-9), Slaney-normalised Slaney-scale
filters, log(max(x, 1e-5)); the fbank is Kaldi's (25 ms Povey window, 10 ms shift,
DC removal, pre-emphasis 0.97, 512-point power spectrum, 80 triangular mel bins
from 20 Hz to Nyquist, log(max(x, ε)), no dither, snip edges).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _hz_to_mel_slaney(freq: torch.Tensor) -> torch.Tensor:
    linear = freq / (200.0 / 3)
    log_region = 15.0 + torch.log(torch.clamp(freq, min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(freq >= 1000.0, log_region, linear)


def _mel_to_hz_slaney(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * (200.0 / 3)
    log_region = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log_region, linear)


def slaney_filters(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None
) -> torch.Tensor:
    """(n_mels, 1 + n_fft/2) filters equal to librosa.filters.mel's defaults."""
    top = sr / 2 if fmax is None else fmax
    fft_freqs = torch.linspace(0, sr / 2, 1 + n_fft // 2, dtype=torch.float64)
    mels = torch.linspace(
        float(_hz_to_mel_slaney(torch.tensor(fmin, dtype=torch.float64))),
        float(_hz_to_mel_slaney(torch.tensor(top, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    points = _mel_to_hz_slaney(mels)
    gaps = torch.diff(points)
    ramps = points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / gaps[:-1, None]
    upper = ramps[2:] / gaps[1:, None]
    filters = torch.clamp(torch.minimum(lower, upper), min=0)
    filters *= (2.0 / (points[2 : n_mels + 2] - points[:n_mels]))[:, None]
    return filters.float()


def reference_mel(
    audio: torch.Tensor,
    sr: int,
    n_fft: int,
    hop: int,
    win: int,
    n_mels: int,
    fmin: float,
    fmax: float | None,
) -> torch.Tensor:
    """(B, samples) float audio → (B, n_mels, frames) log mel (frames = samples // hop)."""
    pad = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        padded,
        n_fft,
        hop_length=hop,
        win_length=win,
        window=torch.hann_window(win, device=audio.device),
        center=False,
        return_complex=True,
    )
    magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    filters = slaney_filters(sr, n_fft, n_mels, fmin, fmax).to(audio.device)
    return torch.log(torch.clamp(filters @ magnitude, min=1e-5))


def _kaldi_mel(m: torch.Tensor | float) -> torch.Tensor:
    return 1127.0 * torch.log(1.0 + torch.as_tensor(m, dtype=torch.float64) / 700.0)


def kaldi_mel_banks(bins: int, padded: int, sr: int, low: float = 20.0) -> torch.Tensor:
    """(bins, padded/2 + 1) Kaldi triangular filters (last column, Nyquist, is zero)."""
    half = padded // 2
    mel_low, mel_high = _kaldi_mel(low), _kaldi_mel(sr / 2)
    delta = (mel_high - mel_low) / (bins + 1)
    fft_mels = _kaldi_mel(torch.arange(half, dtype=torch.float64) * (sr / padded))
    index = torch.arange(bins, dtype=torch.float64)[:, None]
    left = mel_low + index * delta
    center = left + delta
    right = center + delta
    up = (fft_mels[None] - left) / (center - left)
    down = (right - fft_mels[None]) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0)
    return torch.nn.functional.pad(banks, (0, 1)).float()


def kaldi_fbank(audio: torch.Tensor, sr: int = 16000, bins: int = 80) -> torch.Tensor:
    """(samples,) float audio → (frames, bins) Kaldi log-mel fbank."""
    length, shift = int(sr * 0.025), int(sr * 0.010)
    if audio.numel() < length:
        return torch.zeros(0, bins)
    count = 1 + (audio.numel() - length) // shift
    frames = audio.double().as_strided((count, length), (shift, 1))
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - 0.97 * previous
    window = torch.hann_window(length, periodic=False, dtype=torch.float64).pow(0.85)
    frames = frames * window
    padded = 1 << (length - 1).bit_length()
    power = torch.fft.rfft(frames, n=padded).abs().pow(2)
    energies = power @ kaldi_mel_banks(bins, padded, sr).double().T
    eps = torch.finfo(torch.float32).eps
    return torch.clamp(energies, min=eps).log().float()


def sinc_resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited resampling with a Hann-windowed sinc, as the reference's speaker side.

    The reference feeds its speaker prompt (already at 22.05 kHz) through torchaudio's
    default resampler: a polyphase FIR whose taps are sinc(π·t)·cos²(π·t / 12) over
    ±6 zero crossings of a low-pass at 0.99 × the lower rate, computed in float64 and
    applied in float32, one output phase per target sample of a rate/gcd block. The
    output has ceil(len × target / rate) samples.
    """
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if rate == target:
        return audio
    divisor = math.gcd(rate, target)
    step, phases = rate // divisor, target // divisor
    zeros = 6
    cutoff = min(step, phases) * 0.99
    half = math.ceil(zeros * step / cutoff)
    offsets = torch.arange(-half, half + step, dtype=torch.float64) / step
    starts = torch.arange(0, -phases, -1).to(torch.float32)[:, None] / phases
    t = (starts.to(torch.float64) + offsets[None, :]) * cutoff
    t = t.clamp(-zeros, zeros)
    window = torch.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    taps = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t) * (window * (cutoff / step))
    taps = taps.to(torch.float32)[:, None, :]
    signal = torch.nn.functional.pad(torch.from_numpy(audio)[None, None], (half, half + step))
    out = torch.nn.functional.conv1d(signal, taps, stride=step)[0].transpose(0, 1).reshape(-1)
    length = math.ceil(phases * audio.shape[-1] / step)
    return out[:length].numpy().astype(np.float32)
