"""Slaney-scale mel filterbanks (librosa's default: linear below 1 kHz, logarithmic
above, each triangle normalised to unit area), shared by the encoders that were trained
on librosa's `filters.mel`: GE2E and Chatterbox's voice encoder."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = hz * 3.0 / 200.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, logarithmic, linear)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = mel * 200.0 / 3.0
    logarithmic = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


def slaney_mel_filters(
    n_mels: int, n_fft: int, rate_hz: int, fmin_hz: float = 0.0, fmax_hz: float | None = None
) -> npt.NDArray[np.float32]:
    """[n_mels, n_fft // 2 + 1] float32 triangular filters from fmin_hz to fmax_hz
    (default: half the rate)."""
    top = rate_hz / 2.0 if fmax_hz is None else fmax_hz
    bins = np.linspace(0.0, rate_hz / 2, n_fft // 2 + 1)
    low, high = float(_hz_to_mel(np.array(fmin_hz))), float(_hz_to_mel(np.array(top)))
    edges = _mel_to_hz(np.linspace(low, high, n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return filters.astype(np.float32)
