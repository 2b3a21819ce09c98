"""The VoiceFixer restoration engine: 44.1 kHz audio → restored mel → vocoder.

Restore does what the original's `VoiceFixer.restore` does: the whole input in 30 s
segments (the last one as long as what is left), each restored and vocoded on its own
with no context and no padding, the outputs butted together.

StreamingRestore cannot wait for 30 s: the model needs context (a bidirectional GRU, a
UNet over time), so a stream is cut into windows of HOP_S + OVERLAP_S seconds, the
first one led by OVERLAP_S of zeros, each restored on its own and joined to the
previous one with a linear crossfade over OVERLAP_S (ours; the original has no
streaming). The stream lags its input by OVERLAP_S and answers once per HOP_S of
input; it differs from Restore by what the windows' edges change (measured in
tests/parity/test_voicefixer.py, see docs/services/conversion.md).

Modes as in the original: 0 plain; 1 first removes the spectrum above the band that
holds 95 % of the log energy; 2 runs the restorer in training mode (batch statistics,
dropout), which can help badly damaged speech and is not deterministic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from speechmesh.runtime.engine import ModelDescription
from speechmesh.runtime.torch_threads import request_threads, use_threads
from speechmesh.services.conversion.restoration.contract import (
    BlockJob,
    RestorationParams,
    RestorationStream,
    Restorer,
    SegmentJob,
)
from speechmesh.services.conversion.restoration.voicefixer.checkpoint import (
    RESTORER_FILE,
    VOCODER_FILE,
    find_file,
    load_restorer,
    load_vocoder,
)
from speechmesh.services.conversion.restoration.voicefixer.restorer import (
    HOP,
    TIME_MULTIPLE,
    MelRestorer,
)
from speechmesh.services.conversion.restoration.voicefixer.vocoder import MelVocoder

SAMPLE_RATE = 44100
HOP_S = 4.0
OVERLAP_S = 0.5
# Mode 1's band limit: the spectrum above the bins holding this share of log energy goes.
ENERGY_SHARE = 0.95
LIMIT_FFT, LIMIT_HOP = 2048, 512
EPS = 1e-8
SEGMENT_S = 30
# The analysis STFT reflects n_fft / 2 samples at each end: shorter input cannot be read.
MIN_SAMPLES = 1025
# Mode 2 normalises each UNet level over the call itself; up to 64 frames the deepest
# level is one value per channel, which batch statistics cannot normalise.
MODE_2_MIN_SAMPLES = TIME_MULTIPLE * HOP


def remove_high_frequencies(wav: torch.Tensor, keep_length: bool = True) -> torch.Tensor:
    """Mode 1's band limit, as the original computes it with librosa: a zero-padded
    2048 / 512 Hann STFT, the bins from the first one where the cumulative log energy
    reaches ENERGY_SHARE upwards zeroed, each kept bin scaled by |X| / (|X| + 1e-8) (the
    original rebuilds X from |X| and X / (|X| + 1e-8)), and the inverse STFT.

    The original's inverse STFT ends at the last whole hop: 512 · ⌊n / 512⌋ samples.
    keep_length pads that back to n with the inverse's own tail (the stream needs whole
    windows); Restore keeps the original's shorter length."""
    window = torch.hann_window(LIMIT_FFT)
    spectrum = torch.stft(
        wav, LIMIT_FFT, LIMIT_HOP, window=window, pad_mode="constant", return_complex=True
    )
    magnitude = spectrum.abs()
    energy = torch.log10(magnitude + EPS).clamp_min(0).sum(dim=-1, dtype=torch.float64)
    cumulative = torch.cumsum(energy, dim=0)
    cutoff = int(torch.searchsorted(cumulative, ENERGY_SHARE * cumulative[-1]))
    spectrum = spectrum * (magnitude / (magnitude + EPS))
    spectrum[cutoff:] = 0
    length = wav.numel() if keep_length else None
    return torch.istft(spectrum, LIMIT_FFT, LIMIT_HOP, window=window, length=length)


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


class VoiceFixer(Restorer):
    family = "voicefixer"
    sample_rate = SAMPLE_RATE
    segment_samples = SEGMENT_S * SAMPLE_RATE
    option_family = "voice_fixer"
    default_source = "jlmarrugom/voice_fixer"
    hub_patterns = (f"*{RESTORER_FILE}", f"*{VOCODER_FILE}")

    restorer: MelRestorer
    vocoder: MelVocoder

    def load(self) -> None:
        request_threads(self.config.threads)
        root = self.hub_files(self.config.source or self.default_source).resolve()
        device = self.config.device
        self.restorer = load_restorer(find_file(root, RESTORER_FILE), device)
        self.vocoder = load_vocoder(find_file(root, VOCODER_FILE), device)

    def warmup(self) -> None:
        self.restore_window(np.zeros(SAMPLE_RATE, np.float32), 0)

    def describe(self) -> ModelDescription:
        return ModelDescription(native_sample_rate_hz=SAMPLE_RATE)

    def run_batch(self, items: Sequence[BlockJob | SegmentJob]) -> list[np.ndarray]:
        # One shared torch model whose mode can change per window: windows run one at a
        # time (torch spreads each one over its own threads).
        use_threads()
        return [
            self.restore_segment(job.samples, job.params)
            if isinstance(job, SegmentJob)
            else job.stream.process(job.samples)
            for job in items
        ]

    def open_stream(self, params: RestorationParams) -> VoiceFixerStream:
        return VoiceFixerStream(self, params.voicefixer_mode)

    def restore_window(self, window: np.ndarray, mode: int) -> np.ndarray:
        """One stream window restored and vocoded, as long as the window."""
        wav = torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))
        if mode == 1:
            wav = remove_high_frequencies(wav)
        return self._restore(wav, mode)

    def restore_segment(self, samples: np.ndarray, params: RestorationParams) -> np.ndarray:
        """One of Restore's segments, as the original's restore_inmem restores it (mode 1
        returns 512 · ⌊n / 512⌋ samples, as the original does)."""
        mode = params.voicefixer_mode
        wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        if mode == 1:
            wav = remove_high_frequencies(wav, keep_length=False)
        length = wav.numel()
        if length == 0:
            return np.zeros(0, np.float32)
        minimum = MODE_2_MIN_SAMPLES if mode == 2 else MIN_SAMPLES
        if length < minimum:
            # The original fails here (reflect padding longer than the input; mode 2: a
            # single value to normalise); silence after the audio lets the model read
            # it, and the output is cut back.
            wav = torch.nn.functional.pad(wav, (0, minimum - length))
        return self._restore(wav, mode)[:length]

    def _restore(self, wav: torch.Tensor, mode: int) -> np.ndarray:
        """Restored and vocoded, centre-trimmed to the input's length."""
        device = self.config.device
        with torch.no_grad(), training_mode(self.restorer, mode == 2):
            mel = self.restorer(wav[None].to(device))
            audio = self.vocoder(self.vocoder.normalise(mel[:, 0]))[0, 0]
        out: np.ndarray = audio.cpu().numpy()
        start = (len(out) - wav.numel()) // 2
        return out[start : start + wav.numel()].astype(np.float32)


assert HOP_S * SAMPLE_RATE % HOP == 0 and OVERLAP_S * SAMPLE_RATE % HOP == 0
