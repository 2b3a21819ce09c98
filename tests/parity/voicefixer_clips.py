"""The input clips of the VoiceFixer parity cases, rebuilt from a seed (a 31 s clip is
too large to keep as a fixture): a few gliding harmonics under a syllable-rate
envelope, in seeded white noise. numpy's default generator (PCG64) draws the same
numbers on every platform, so the generator script and the suite see the same samples.
"""

from __future__ import annotations

import numpy as np


def clip(seed: int, samples: int, rate: int) -> np.ndarray:
    """Mono float32 in [-0.6, 0.6]."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples, dtype=np.float64) / rate
    pitch = 110 + 60 * rng.random() + 25 * np.sin(2 * np.pi * 0.3 * t + rng.random() * 6)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 9))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (3 + rng.random()) * t) ** 2
    noise = rng.standard_normal(samples)
    signal = 0.3 * envelope * voiced + 0.05 * noise
    return (0.6 * signal / np.max(np.abs(signal))).astype(np.float32)
