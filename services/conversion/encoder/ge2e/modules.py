"""The GE2E speaker encoder: 40-band mel → LSTM stack → linear → ReLU → L2 norm.

One module serves two weight sets: the HarmonySpeech V1 encoder (`encoder/config.json`
+ `encoder/encoder.pt` of `harmony-ai/harmony-speech-v1`, sizes from the config) and
the trained GE2E weights shipped in the `resemblyzer` wheel (`pretrained.pt`, 3 × 256
units), the embedded default. Both checkpoints are `{step, model_state,
optimizer_state}`; `model_state` also holds the GE2E loss's `similarity_weight` and
`similarity_bias`, which inference never uses and which are ignored by name.

An utterance is cut into partial windows of 160 frames (1.6 s); each window is
embedded and the mean of all windows, renormalised, is the speaker's embedding.
This module imports no service code, so other services can reuse the encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import webrtcvad
from torch import nn

from speechmesh.runtime import weights
from speechmesh.runtime.audio import resample
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.conversion.wheels import wheel_file

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
PARTIAL_FRAMES = 160  # 1.6 s
MIN_COVERAGE = 0.75
INT16_MAX = 2**15 - 1
# Training-only parameters of the GE2E loss, stored in every official model_state.
LOSS_PARAMETERS = ("similarity_weight", "similarity_bias")
CONFIG_KEYS = ("mel_n_channels", "model_hidden_size", "model_num_layers", "model_embedding_size")

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Ge2eConfig:
    """The encoder's sizes, as the checkpoint's config.json gives them."""

    mel_n_channels: int = 40
    model_hidden_size: int = 256
    model_num_layers: int = 3
    model_embedding_size: int = 256

    @classmethod
    def from_json(cls, data: Any, origin: str) -> Ge2eConfig:
        """The config from a parsed config.json: the sizes under "model", or at top level."""
        section = data.get("model", data) if isinstance(data, dict) else None
        if not isinstance(section, dict):
            raise FailedPrecondition(f"{origin} is not a JSON object")
        missing = [key for key in CONFIG_KEYS if key not in section]
        if missing:
            raise FailedPrecondition(f"{origin} lacks {', '.join(missing)}")
        values = {key: section[key] for key in CONFIG_KEYS}
        bad = [key for key, value in values.items() if not isinstance(value, int) or value < 1]
        if bad:
            raise FailedPrecondition(f"{origin}: {', '.join(bad)} must be positive integers")
        return cls(**values)


@dataclass(frozen=True)
class Preprocessing:
    """How a recording becomes partial mel windows; differs slightly between weight sets."""

    partial_step: int
    """Frames between the starts of two partial windows."""
    peak_normalize: float | None
    """Scale to this peak before the loudness step (None: keep the level)."""
    target_dbfs: float = -30.0
    vad_window_ms: int = 30
    vad_moving_average_width: int = 8
    vad_max_silence_windows: int = 6
    any_speech: bool = False
    """Embed any speech that survives trimming, in one zero-padded partial window if it
    is shorter than one (else at least MIN_COVERAGE of a window is required)."""
    reference_levels: bool = False
    """Level steps in float32 as the HarmonySpeech engine computes them: the resampled
    length fixed to ceil(n · ratio) (librosa), the loudness gain from the float32 mean
    square, and the VAD's 16-bit samples wrapping around, not clipped, past full scale."""
    mel_pad_mode: str = "reflect"
    """How the spectrogram pads the edges of centred frames ("constant": zeros)."""

    @property
    def min_speech_s(self) -> float:
        """The least speech (after silence trimming) that the encoder embeds."""
        if self.any_speech:
            return self.vad_window_ms / 1000
        return MIN_COVERAGE * PARTIAL_FRAMES * HOP / SAMPLE_RATE


# resemblyzer embeds at 1.3 partials per second: round(16000 / 1.3 / 160) = 77 frames.
RESEMBLYZER_PREPROCESSING = Preprocessing(partial_step=77, peak_normalize=None)
# HarmonySpeech V1 (the Real-Time-Voice-Cloning lineage): half-overlapping windows.
# Its engine always embeds at least one (padded) window, and its librosa pads with zeros.
HARMONYSPEECH_PREPROCESSING = Preprocessing(
    partial_step=80,
    peak_normalize=0.9,
    any_speech=True,
    reference_levels=True,
    mel_pad_mode="constant",
)


class Ge2eEncoder(nn.Module):
    """mels [batch, frames, mel_n_channels] → unit-norm embeddings [batch, embedding]."""

    def __init__(self, config: Ge2eConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(
            config.mel_n_channels,
            config.model_hidden_size,
            config.model_num_layers,
            batch_first=True,
        )
        self.linear = nn.Linear(config.model_hidden_size, config.model_embedding_size)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = self.relu(self.linear(hidden[-1]))
        # A window whose every unit is cut off by the ReLU has no direction: keep it 0.
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


# ------------------------------------------------------------------------ loading


def load_checkpoint(config: Ge2eConfig, checkpoint: Path, device: str = "cpu") -> Ge2eEncoder:
    """The encoder with the weights of a `{step, model_state, ...}` checkpoint, strictly."""
    state = weights.unwrap(weights.load_state_dict(checkpoint), "model_state")
    encoder = Ge2eEncoder(config)
    weights.load_strict(encoder, state, ignore=LOSS_PARAMETERS)
    return encoder.to(device).eval()


def resemblyzer_checkpoint() -> Path:
    """pretrained.pt inside the installed resemblyzer wheel (found without importing it)."""
    return wheel_file("resemblyzer", "resemblyzer==0.1.4", "pretrained.pt")


def load_resemblyzer(device: str = "cpu") -> Ge2eEncoder:
    """The GE2E weights shipped in resemblyzer (3 LSTM layers of 256, 256-d embeddings)."""
    return load_checkpoint(Ge2eConfig(), resemblyzer_checkpoint(), device)


def load_harmonyspeech(root: Path, device: str = "cpu") -> Ge2eEncoder:
    """The encoder of a harmony-speech-v1 snapshot: `encoder/config.json`, `encoder/encoder.pt`.

    `root` is the snapshot (holding `encoder/`) or the `encoder/` folder itself.
    """
    folder = root / "encoder" if (root / "encoder").is_dir() else root
    config_path, checkpoint = weights.require_files(folder, ["config.json", "encoder.pt"])
    try:
        data = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise FailedPrecondition(f"{config_path} is not readable JSON: {error}") from error
    return load_checkpoint(Ge2eConfig.from_json(data, str(config_path)), checkpoint, device)


# ------------------------------------------------------------------ preprocessing


def normalize_volume(wav: Samples, target_dbfs: float) -> Samples:
    """Raises (never lowers) the level to target_dbfs RMS."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    if rms == 0.0:
        return wav
    change_db = target_dbfs - 20 * np.log10(rms)
    if change_db < 0:
        return wav
    return (wav * np.float32(10 ** (change_db / 20))).astype(np.float32)


def raise_to_dbfs_f32(wav: Samples, target_dbfs: float) -> Samples:
    """normalize_volume with float32 arithmetic throughout (mean square, gain, product)."""
    wav = np.asarray(wav, dtype=np.float32)
    mean_square = np.mean(np.square(wav))
    if not mean_square > 0:
        return wav
    change_db = np.float32(target_dbfs) - np.float32(10) * np.log10(mean_square)
    if change_db < 0:
        return wav
    gain = np.float32(10) ** (change_db / np.float32(20))
    return (wav * gain).astype(np.float32)


def vad_pcm(wav: Samples, wrap: bool) -> bytes:
    """16-bit PCM for webrtcvad: clipped to full scale, or wrapped around past it."""
    if not wrap:
        return np.round(np.clip(wav, -1.0, 1.0) * INT16_MAX).astype("<i2").tobytes()
    scaled = np.round(wav * np.float32(INT16_MAX)).astype(np.int64)
    return scaled.astype("<i2").tobytes()  # int64 → int16 keeps the low 16 bits


def trim_long_silences(wav: Samples, params: Preprocessing) -> Samples:
    """Keeps voiced windows (webrtcvad, mode 3), smoothed and widened; drops long silences."""
    window = params.vad_window_ms * SAMPLE_RATE // 1000
    wav = wav[: len(wav) - len(wav) % window]
    if len(wav) == 0:
        return wav
    pcm = vad_pcm(wav, params.reference_levels)
    vad = webrtcvad.Vad(3)
    voiced = np.array(
        [
            vad.is_speech(pcm[start * 2 : (start + window) * 2], SAMPLE_RATE)
            for start in range(0, len(wav), window)
        ],
        dtype=np.float64,
    )
    width = params.vad_moving_average_width
    padded = np.concatenate([np.zeros((width - 1) // 2), voiced, np.zeros(width // 2)])
    smoothed = np.convolve(padded, np.ones(width) / width, mode="valid")
    mask = np.round(smoothed).astype(bool)
    # Widen each voiced run by the longest silence that may stay inside speech.
    reach = params.vad_max_silence_windows // 2
    widened = np.convolve(mask, np.ones(2 * reach + 1), mode="same") > 0
    return wav[np.repeat(widened, window)]


def preprocess(samples: Samples, rate_hz: int, params: Preprocessing) -> Samples:
    """A recording at any rate → 16 kHz, level-normalised, long silences removed."""
    wav = resample(np.asarray(samples, dtype=np.float32), rate_hz, SAMPLE_RATE)
    if params.reference_levels and rate_hz != SAMPLE_RATE:
        wanted = int(np.ceil(len(samples) * SAMPLE_RATE / rate_hz))
        wav = np.pad(wav[:wanted], (0, max(0, wanted - len(wav))))
    if params.peak_normalize is not None:
        peak = np.abs(wav).max() if len(wav) else np.float32(0)
        if peak > 0:
            wav = (wav / peak * np.float32(params.peak_normalize)).astype(np.float32)
    if params.reference_levels:
        wav = raise_to_dbfs_f32(wav, params.target_dbfs)
    else:
        wav = normalize_volume(wav, params.target_dbfs)
    return trim_long_silences(wav, params)


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # Slaney's mel scale: linear below 1 kHz, logarithmic above.
    linear = hz * 3.0 / 200.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, logarithmic, linear)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = mel * 200.0 / 3.0
    logarithmic = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


def slaney_mel_filters(n_mels: int, n_fft: int = N_FFT, rate_hz: int = SAMPLE_RATE) -> Samples:
    """[n_mels, n_fft // 2 + 1] triangular filters, Slaney scale and area normalisation
    (what the encoder was trained with: librosa's default filterbank)."""
    bins = np.linspace(0.0, rate_hz / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array(rate_hz / 2.0))), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return filters.astype(np.float32)


class MelFrontEnd:
    """Power mel spectrogram [frames, n_mels] (not log) of 16 kHz audio, centred frames
    (the edges padded by `pad_mode`: "reflect" or "constant", zeros)."""

    def __init__(self, n_mels: int, pad_mode: str = "reflect") -> None:
        self.filters = torch.from_numpy(slaney_mel_filters(n_mels))
        self.window = torch.hann_window(N_FFT, periodic=True)
        self.pad_mode = pad_mode

    def __call__(self, wav: Samples) -> Samples:
        signal = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
        spectrum = torch.stft(
            signal,
            N_FFT,
            HOP,
            window=self.window,
            center=True,
            pad_mode=self.pad_mode,
            return_complex=True,
        )
        power = spectrum.real.square() + spectrum.imag.square()
        mel: Samples = (self.filters @ power).T.contiguous().numpy()
        return mel


def partial_windows(n_samples: int, step: int) -> list[tuple[int, int]]:
    """(first, end) mel frames of each partial window covering n_samples of audio.

    The last window is kept only if audio covers MIN_COVERAGE of it, unless it is the
    only one.
    """
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    starts = range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    windows = [(start, start + PARTIAL_FRAMES) for start in starts]
    last_start = windows[-1][0] * HOP
    coverage = (n_samples - last_start) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(windows) > 1:
        windows.pop()
    return windows


def partial_mels(wav: Samples, front_end: MelFrontEnd, step: int) -> Samples:
    """[n_windows, PARTIAL_FRAMES, n_mels]: the windows of one preprocessed utterance."""
    windows = partial_windows(len(wav), step)
    needed = windows[-1][1] * HOP
    if needed > len(wav):
        wav = np.pad(wav, (0, needed - len(wav)))
    mel = front_end(wav)
    return np.stack([mel[first:end] for first, end in windows])


def embed_windows(encoder: Ge2eEncoder, windows: Samples, device: str = "cpu") -> Samples:
    """Unit-norm embeddings [n, embedding] of partial windows [n, frames, mels]."""
    with torch.inference_mode():
        result: Samples = encoder(torch.from_numpy(windows).to(device)).cpu().numpy()
    return result


def speaker_embedding(partial_embeddings: Samples) -> Samples:
    """The mean of partial-window embeddings [n, d], renormalised to unit length."""
    mean = partial_embeddings.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)
