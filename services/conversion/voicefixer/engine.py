"""The VoiceFixer restoration engine: windows of 44.1 kHz audio → restored mel → vocoder.

The model needs context (a bidirectional GRU, a UNet over time), so a call is cut into
windows of HOP_S + OVERLAP_S seconds, each restored and vocoded on its own and joined
to the previous one with a linear crossfade over OVERLAP_S (the original restores 30 s
segments and butts them together; the crossfade is ours). The stream therefore lags
its input by OVERLAP_S, and StreamingRestore answers once per HOP_S of input.

Modes as in the original: 0 plain; 1 first removes the spectrum above the band that
holds 95 % of the log energy; 2 runs the restorer in training mode (batch statistics,
dropout), which can help badly damaged speech and is not deterministic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from speechmesh.runtime import weights
from speechmesh.runtime.engine import ModelDescription
from speechmesh.services.conversion.restoration import (
    BlockJob,
    RestorationEngine,
    RestorationParams,
    RestorationStream,
)
from speechmesh.services.conversion.torch_threads import request_threads, use_threads
from speechmesh.services.conversion.voicefixer.checkpoint import (
    RESTORER_FILE,
    VOCODER_FILE,
    find_file,
    load_restorer,
    load_vocoder,
)
from speechmesh.services.conversion.voicefixer.restorer import HOP, Restorer
from speechmesh.services.conversion.voicefixer.vocoder import Vocoder

SAMPLE_RATE = 44100
HOP_S = 4.0
OVERLAP_S = 0.5
# Mode 1's band limit: the spectrum above the bins holding this share of log energy goes.
ENERGY_SHARE = 0.95
LIMIT_FFT, LIMIT_HOP = 2048, 512


def remove_high_frequencies(wav: torch.Tensor) -> torch.Tensor:
    window = torch.hann_window(LIMIT_FFT)
    spectrum = torch.stft(wav, LIMIT_FFT, LIMIT_HOP, window=window, return_complex=True)
    energy = torch.log10(spectrum.abs() + 1e-8).clamp_min(0).sum(dim=-1)
    cumulative = torch.cumsum(energy, dim=0)
    cutoff = int(torch.searchsorted(cumulative, ENERGY_SHARE * cumulative[-1]))
    spectrum[cutoff:] = 0
    return torch.istft(spectrum, LIMIT_FFT, LIMIT_HOP, window=window, length=wav.numel())


@contextlib.contextmanager
def training_mode(module: torch.nn.Module, enabled: bool) -> Iterator[None]:
    """Mode 2: batch statistics and dropout, without touching the stored running
    statistics (the original's train() would drift them for every later call)."""
    if not enabled:
        yield
        return
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    module.train()
    for norm in norms:
        norm.track_running_stats = False
    try:
        yield
    finally:
        for norm in norms:
            norm.track_running_stats = True
        module.eval()


class VoiceFixerStream(RestorationStream):
    def __init__(self, engine: VoiceFixer, mode: int) -> None:
        super().__init__()
        self.block = int(HOP_S * SAMPLE_RATE)
        self.delay = int(OVERLAP_S * SAMPLE_RATE)
        self._engine = engine
        self._mode = mode
        # The first window starts OVERLAP_S before the audio: that is the stream's delay.
        self._context = np.zeros(self.delay, np.float32)
        self._held = np.zeros(0, np.float32)

    def _process(self, samples: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(samples), self.block):
            window = np.concatenate([self._context, samples[start : start + self.block]])
            restored = self._engine.restore_window(window, self._mode)
            if len(self._held):
                ramp = np.linspace(0.0, 1.0, len(self._held), dtype=np.float32)
                restored[: len(ramp)] = self._held * (1 - ramp) + restored[: len(ramp)] * ramp
            outputs.append(restored[: self.block])
            self._held = restored[self.block :].copy()
            self._context = window[self.block :].copy()
        return np.concatenate(outputs)


class VoiceFixer(RestorationEngine):
    family = "voicefixer"
    sample_rate = SAMPLE_RATE
    option_family = "voice_fixer"
    DEFAULT_SOURCE = "jlmarrugom/voice_fixer"

    restorer: Restorer
    vocoder: Vocoder

    def load(self) -> None:
        request_threads(self.config.threads)
        root = weights.resolve(
            self.config.source or self.DEFAULT_SOURCE,
            allow_patterns=[f"*{RESTORER_FILE}", f"*{VOCODER_FILE}"],
        )
        device = self.config.device
        self.restorer = load_restorer(find_file(root, RESTORER_FILE), device)
        self.vocoder = load_vocoder(find_file(root, VOCODER_FILE), device)

    def warmup(self) -> None:
        self.restore_window(np.zeros(SAMPLE_RATE, np.float32), 0)

    def describe(self) -> ModelDescription:
        return ModelDescription(native_sample_rate_hz=SAMPLE_RATE)

    def run_batch(self, items: Sequence[BlockJob]) -> list[np.ndarray]:
        # One shared torch model whose mode can change per window: windows run one at a
        # time (torch spreads each one over its own threads).
        use_threads()
        return [job.stream.process(job.samples) for job in items]

    def open_stream(self, params: RestorationParams) -> VoiceFixerStream:
        return VoiceFixerStream(self, params.voicefixer_mode)

    def restore_window(self, window: np.ndarray, mode: int) -> np.ndarray:
        """One window restored and vocoded, centre-trimmed to its own length."""
        device = self.config.device
        wav = torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))
        if mode == 1:
            wav = remove_high_frequencies(wav)
        with torch.no_grad(), training_mode(self.restorer, mode == 2):
            mel = self.restorer(wav[None].to(device))
            audio = self.vocoder(self.vocoder.normalise(mel[:, 0]))[0, 0]
        out: np.ndarray = audio.cpu().numpy()
        start = (len(out) - len(window)) // 2
        return out[start : start + len(window)].astype(np.float32)


assert HOP_S * SAMPLE_RATE % HOP == 0 and OVERLAP_S * SAMPLE_RATE % HOP == 0
