"""Spectral front-ends: the 22.05 kHz reference mel (librosa Slaney filters) and Kaldi fbank.

Written here because torchaudio has no build for the pinned torch. Both follow the
reference numerically: the mel is reflect-padded by (n_fft − hop)/2 each side, STFT
without centring, magnitude √(re² + im² + 1e-9), Slaney-normalised Slaney-scale
filters, log(max(x, 1e-5)); the fbank is Kaldi's (25 ms Povey window, 10 ms shift,
DC removal, pre-emphasis 0.97, 512-point power spectrum, 80 triangular mel bins
from 20 Hz to Nyquist, log(max(x, ε)), no dither, snip edges).
"""

from __future__ import annotations

import math

import numpy as np
import torch

F_SP = 200.0 / 3  # Slaney: linear below 1 kHz, 200/3 Hz a mel
MIN_LOG_MEL = 1000.0 / F_SP
LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel_slaney(freq: float) -> float:
    if freq >= 1000.0:
        return MIN_LOG_MEL + np.log(freq / 1000.0) / LOG_STEP
    return freq / F_SP


def _mel_to_hz_slaney(mels: np.ndarray) -> np.ndarray:
    freqs = F_SP * mels
    log = mels >= MIN_LOG_MEL
    freqs[log] = 1000.0 * np.exp(LOG_STEP * (mels[log] - MIN_LOG_MEL))
    return freqs


def slaney_filters(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None
) -> torch.Tensor:
    """(n_mels, 1 + n_fft/2) filters equal to librosa.filters.mel's defaults, bit for bit:
    the triangles in float64, stored as float32, then scaled in place (float32 rounding
    twice, as librosa does; one rounding differs by ~1e-8 and shows after the flow)."""
    top = sr / 2 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mels = np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(top), n_mels + 2)
    points = _mel_to_hz_slaney(mels)
    gaps = np.diff(points)
    ramps = np.subtract.outer(points, fft_freqs)
    filters = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        filters[i] = np.maximum(0, np.minimum(-ramps[i] / gaps[i], ramps[i + 2] / gaps[i + 1]))
    filters *= (2.0 / (points[2 : n_mels + 2] - points[:n_mels]))[:, np.newaxis]
    return torch.from_numpy(filters)


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
    """(B, samples) float audio → (B, n_mels, frames) log mel."""
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


def _kaldi_mel(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * (1.0 + freq / 700.0).log()


def kaldi_mel_banks(bins: int, padded: int, sr: int, low: float = 20.0) -> torch.Tensor:
    """(bins, padded/2 + 1) Kaldi triangular filters (last column, Nyquist, is zero), in
    float32 as torchaudio computes them (the band edges from float64 scalars)."""
    mel_low = 1127.0 * math.log(1.0 + low / 700.0)
    mel_high = 1127.0 * math.log(1.0 + (0.5 * sr) / 700.0)
    delta = (mel_high - mel_low) / (bins + 1)
    index = torch.arange(bins).unsqueeze(1)
    left = mel_low + index * delta
    center = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    mel = _kaldi_mel((sr / padded) * torch.arange(padded / 2)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.max(torch.zeros(1), torch.min(up, down))
    return torch.nn.functional.pad(banks, (0, 1))


def kaldi_fbank(audio: torch.Tensor, sr: int = 16000, bins: int = 80) -> torch.Tensor:
    """(samples,) float32 audio → (frames, bins) Kaldi log-mel fbank, each step in float32
    and in the order torchaudio.compliance.kaldi.fbank takes it."""
    audio = audio.float()
    length, shift = int(sr * 0.025), int(sr * 0.010)
    if audio.numel() < length:
        return torch.zeros(0, bins)
    count = 1 + (audio.numel() - length) // shift
    frames = audio.as_strided((count, length), (shift, 1))
    frames = frames - torch.mean(frames, dim=1).unsqueeze(1)
    previous = torch.nn.functional.pad(frames.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)
    frames = frames - 0.97 * previous[:, :-1]
    window = torch.hann_window(length, periodic=False, dtype=torch.float32).pow(0.85)
    frames = frames * window.unsqueeze(0)
    padded = 1 << (length - 1).bit_length()
    frames = torch.nn.functional.pad(frames.unsqueeze(0), (0, padded - length)).squeeze(0)
    power = torch.fft.rfft(frames).abs().pow(2.0)
    energies = torch.mm(power, kaldi_mel_banks(bins, padded, sr).T)
    return torch.max(energies, torch.tensor(torch.finfo(torch.float32).eps)).log()


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
