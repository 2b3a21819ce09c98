"""Integrated loudness (ITU-R BS.1770, as pyloudnorm's Meter measures it) and the gain
that brings a clip to a target: Chatterbox Turbo normalises its reference clips to
-27 LUFS before encoding them.

K-weighting is pyloudnorm's two RBJ biquads (a +4 dB high shelf at 1.5 kHz, Q 1/√2,
and a 38 Hz high-pass, Q 0.5); both are stable and decay below 1e-12 within a few
thousand samples, so they are applied as their impulse responses (8192 taps), by FFT
convolution. Blocks of 400 ms every 100 ms are gated at -70 LUFS, then 10 LU under
the mean of the blocks kept.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

BLOCK_S = 0.4
STEP = 0.25
ABSOLUTE_GATE = -70.0
TAPS = 8192


def _biquad(kind: str, gain_db: float, q: float, fc: float, rate: int) -> tuple:
    a_gain = 10 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / rate
    alpha = math.sin(w0) / (2.0 * q)
    cos, root = math.cos(w0), math.sqrt(a_gain)
    if kind == "high_shelf":
        b = (
            a_gain * ((a_gain + 1) + (a_gain - 1) * cos + 2 * root * alpha),
            -2 * a_gain * ((a_gain - 1) + (a_gain + 1) * cos),
            a_gain * ((a_gain + 1) + (a_gain - 1) * cos - 2 * root * alpha),
        )
        a = (
            (a_gain + 1) - (a_gain - 1) * cos + 2 * root * alpha,
            2 * ((a_gain - 1) - (a_gain + 1) * cos),
            (a_gain + 1) - (a_gain - 1) * cos - 2 * root * alpha,
        )
    else:  # high_pass
        b = ((1 + cos) / 2, -(1 + cos), (1 + cos) / 2)
        a = (1 + alpha, -2 * cos, 1 - alpha)
    return tuple(x / a[0] for x in b), tuple(x / a[0] for x in a)


def _impulse(b: tuple, a: tuple) -> npt.NDArray[np.float64]:
    out = np.zeros(TAPS)
    x1 = x2 = y1 = y2 = 0.0
    for n in range(TAPS):
        x0 = 1.0 if n == 0 else 0.0
        y0 = b[0] * x0 + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        out[n] = y0
        x2, x1, y2, y1 = x1, x0, y1, y0
    return out


def _filter(signal: npt.NDArray[np.float64], response: npt.NDArray[np.float64]) -> np.ndarray:
    size = 1 << math.ceil(math.log2(len(signal) + len(response)))
    spectrum = np.fft.rfft(signal, size) * np.fft.rfft(response, size)
    return np.fft.irfft(spectrum, size)[: len(signal)]


def integrated_loudness(wav: npt.NDArray[np.float32], rate: int) -> float:
    """LUFS of a mono clip at least one block long (-inf when all blocks are gated)."""
    if len(wav) < BLOCK_S * rate:
        raise ValueError("the clip is shorter than a 400 ms block")
    weighted = np.asarray(wav, np.float32)
    for stage in (("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0), ("high_pass", 0.0, 0.5, 38.0)):
        response = _impulse(*_biquad(stage[0], stage[1], stage[2], stage[3], rate))
        # pyloudnorm writes each stage back into the clip's own float32 array.
        weighted = _filter(weighted.astype(np.float64), response).astype(np.float32)
    seconds = len(weighted) / rate
    blocks = int(np.round((seconds - BLOCK_S) / (BLOCK_S * STEP))) + 1
    power = np.empty(blocks)
    for j in range(blocks):
        low = int(BLOCK_S * (j * STEP) * rate)
        high = int(BLOCK_S * (j * STEP + 1) * rate)
        power[j] = (1.0 / (BLOCK_S * rate)) * np.sum(np.square(weighted[low:high]))
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10.0 * np.log10(power)
        kept = power[loudness >= ABSOLUTE_GATE]
        relative = -0.691 + 10.0 * np.log10(kept.mean() if kept.size else np.nan) - 10.0
        gated = power[(loudness > relative) & (loudness > ABSOLUTE_GATE)]
        mean = np.nan_to_num(gated.mean()) if gated.size else 0.0
        return float(-0.691 + 10.0 * np.log10(mean))


def normalize_loudness(wav: npt.NDArray[np.float32], rate: int, target: float) -> np.ndarray:
    """`wav` scaled to `target` LUFS; unchanged when its loudness cannot be measured
    (shorter than a block, or silent), as the reference's norm_loudness."""
    try:
        loudness = integrated_loudness(wav, rate)
    except ValueError:
        return wav
    gain = 10.0 ** ((target - loudness) / 20.0)
    if not (math.isfinite(gain) and gain > 0.0):
        return wav
    return np.asarray(wav * gain, dtype=np.float32)
