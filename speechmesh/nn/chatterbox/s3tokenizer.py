"""S3 speech tokenizer v2 (CosyVoice 2's speech_tokenizer_v2_25hz, as Chatterbox runs it):
16 kHz audio → 25 Hz speech tokens in [0, 6561).

Public API (stable; the T3 side calls it for prompt tokens):
  * `S3TokenizerConfig` — sizes (the official ones by default; tests shrink them).
  * `S3Tokenizer(config)` — the module; its state-dict keys are the official ones under
    the `tokenizer.` prefix of s3gen.safetensors (`encoder.*`, `quantizer._codebook.*`,
    and the `_mel_filters` / `window` buffers, which we compute and never need to load).
  * `S3Tokenizer.tokenize(wavs, max_len=None)` — a list of 1-D float 16 kHz waves →
    `(tokens (B, T) int64, lengths (B,) int64)`; rows past their length are zero.

What changes numbers (all as the reference):
  * log mel: STFT n_fft 400, hop 160, periodic Hann, centred (reflect pad), the last
    frame dropped; power spectrum through librosa's Slaney mel filters (128 bins,
    0–8 kHz); log10(max(x, 1e-10)), floored at (its own maximum − 8), then (x + 4) / 4.
    The maximum is taken per wave, so a wave's tokens never depend on its batch.
  * `max_len` keeps the first 4·max_len mel frames (T3's prompt tokens).
  * encoder: two stride-2 GELU convolutions (k 3), then blocks of FSMN self-attention
    (rotary positions on 64-d heads, q and k each scaled by d^-¼, a depthwise k-31
    memory over v added to the output) and a GELU MLP; no final norm.
  * FSQ: tanh(project_down(h)) · 0.999 rounded half-to-even + 1 gives 8 digits in base 3.
  * longer than 3000 mel frames (30 s): 30 s windows every 26 s, each window's tokens
    trimmed by 50 at its inner edges and joined (the reference's long-audio path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.nn.spectral import slaney_filters

SAMPLE_RATE = 16000
HOP = 160
N_FFT = 400
TOKEN_RATE = 25
VOCAB_SIZE = 3**8  # 6561 speech tokens
# The reference's long-audio path (frames at 100 Hz).
WINDOW_FRAMES = 3000
STRIDE_FRAMES = 2600
TRIM_TOKENS = 50  # half the 4 s overlap at 25 Hz, dropped at each inner edge
ROTARY_POSITIONS = 2048
ROTARY_DIM = 64


@dataclass(frozen=True)
class S3TokenizerConfig:
    n_mels: int = 128
    n_state: int = 1280
    n_head: int = 20
    n_layer: int = 6
    fsmn_kernel: int = 31


def _rotary(positions: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions, dim) cos and sin, each half repeated (the reference's layout)."""
    inv = 1.0 / (10000.0 ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(positions).float(), inv)
    freqs = torch.polar(torch.ones_like(angles), angles)
    real = torch.view_as_real(torch.cat([freqs, freqs], dim=-1))
    return real[..., 0], real[..., 1]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, T, H, D) rotated; cos, sin (T, D)."""
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[None, :, None] + turned * sin[None, :, None]


class FSMNAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int, kernel: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)
        self.fsmn_block = nn.Conv1d(n_state, n_state, kernel, groups=n_state, bias=False)
        self.left = (kernel - 1) // 2
        self.right = kernel - 1 - self.left

    def forward(
        self,
        x: torch.Tensor,
        bias: torch.Tensor,
        keep: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> torch.Tensor:
        b, t, d = x.shape
        q = self.query(x).view(b, t, self.n_head, -1)
        k = self.key(x).view(b, t, self.n_head, -1)
        v = self.value(x).view(b, t, self.n_head, -1)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        # FSMN memory: a depthwise convolution over the (masked) values.
        flat = v.reshape(b, t, d) * keep
        memory = self.fsmn_block(F.pad(flat.transpose(1, 2), (self.left, self.right)))
        memory = (memory.transpose(1, 2) + flat) * keep
        scale = (d // self.n_head) ** -0.25
        scores = (q.permute(0, 2, 1, 3) * scale) @ (k.permute(0, 2, 3, 1) * scale) + bias
        weights = torch.softmax(scores.float(), dim=-1)
        mixed = (weights @ v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3).flatten(2)
        return self.out(mixed) + memory


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, kernel: int) -> None:
        super().__init__()
        self.attn = FSMNAttention(n_state, n_head, kernel)
        self.attn_ln = nn.LayerNorm(n_state, eps=1e-5)
        self.mlp = nn.Sequential(
            nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state)
        )
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x, bias, keep, cos, sin) -> torch.Tensor:  # type: ignore[no-untyped-def]
        x = x + self.attn(self.attn_ln(x), bias, keep, cos, sin)
        return x + self.mlp(self.mlp_ln(x))


def _halve(lengths: torch.Tensor) -> torch.Tensor:
    """Length after a k-3, stride-2, pad-1 convolution."""
    return (lengths - 1) // 2 + 1


def _keep(lengths: torch.Tensor, size: int) -> torch.Tensor:
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


class AudioEncoder(nn.Module):
    def __init__(self, config: S3TokenizerConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(config.n_mels, config.n_state, 3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(config.n_state, config.n_state, 3, stride=2, padding=1)
        self.blocks = nn.ModuleList(
            ResidualAttentionBlock(config.n_state, config.n_head, config.fsmn_kernel)
            for _ in range(config.n_layer)
        )
        cos, sin = _rotary(ROTARY_POSITIONS, ROTARY_DIM)
        self.register_buffer("rotary_cos", cos, persistent=False)
        self.register_buffer("rotary_sin", sin, persistent=False)

    def forward(
        self, mel: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, n_mels, T), lengths (B,) → hidden (B, T/4, n_state), lengths."""
        x = F.gelu(self.conv1(mel * _keep(lengths, mel.shape[-1])[:, None]))
        lengths = _halve(lengths)
        x = F.gelu(self.conv2(x * _keep(lengths, x.shape[-1])[:, None]))
        lengths = _halve(lengths)
        x = x.transpose(1, 2)
        keep = _keep(lengths, x.shape[1])
        bias = ((1.0 - keep.to(x.dtype)) * -1.0e10)[:, None, None, :]
        cos, sin = self.rotary_cos[: x.shape[1]], self.rotary_sin[: x.shape[1]]
        for block in self.blocks:
            x = block(x, bias, keep[..., None].to(x.dtype), cos, sin)
        return x, lengths


class FSQCodebook(nn.Module):
    def __init__(self, n_state: int) -> None:
        super().__init__()
        self.project_down = nn.Linear(n_state, 8)

    def encode(self, hidden: torch.Tensor) -> torch.Tensor:
        digits = (torch.tanh(self.project_down(hidden).float()) * 0.9990000128746033).round() + 1
        powers = 3.0 ** torch.arange(8, device=hidden.device, dtype=digits.dtype)
        return (digits * powers).sum(-1).long()


class FSQVectorQuantization(nn.Module):
    def __init__(self, n_state: int) -> None:
        super().__init__()
        self._codebook = FSQCodebook(n_state)


class S3Tokenizer(nn.Module):
    """speech_tokenizer_v2_25hz: log mel → encoder → FSQ."""

    def __init__(self, config: S3TokenizerConfig | None = None) -> None:
        super().__init__()
        self.config = config or S3TokenizerConfig()
        self.encoder = AudioEncoder(self.config)
        self.quantizer = FSQVectorQuantization(self.config.n_state)
        filters = slaney_filters(SAMPLE_RATE, N_FFT, self.config.n_mels, 0.0, None)
        # Persistent like the reference's, so a checkpoint that carries them loads;
        # the loader never needs them (they are recomputed here).
        self.register_buffer("_mel_filters", filters)
        self.register_buffer("window", torch.hann_window(N_FFT))

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(samples,) float 16 kHz → (n_mels, samples // 160) normalised log mel."""
        spec = torch.stft(audio.float(), N_FFT, HOP, window=self.window, return_complex=True)
        power = spec[..., :-1].abs() ** 2
        log_spec = torch.clamp(self._mel_filters @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    @torch.inference_mode()
    def tokenize(
        self, wavs: Sequence[torch.Tensor], max_len: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """1-D 16 kHz waves → (tokens (B, T), lengths (B,)), tokens past a length zero."""
        device = self.window.device
        mels = []
        for wav in wavs:
            mel = self.log_mel(torch.as_tensor(wav).to(device).reshape(-1))
            mels.append(mel if max_len is None else mel[:, : 4 * max_len])
        return self.quantize(mels)

    def quantize(self, mels: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_mels, frames) mels → tokens, lengths (long ones through 30 s windows)."""
        if any(mel.shape[1] > WINDOW_FRAMES for mel in mels):
            return self._quantize_windows(mels)
        return self._encode(list(mels), pad_to=None)

    def _encode(
        self, mels: list[torch.Tensor], pad_to: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.window.device
        lengths = torch.tensor([m.shape[1] for m in mels], device=device)
        width = pad_to or int(lengths.max()) if mels else 0
        batch = torch.zeros(len(mels), self.config.n_mels, width, device=device)
        for row, mel in enumerate(mels):
            batch[row, :, : mel.shape[1]] = mel
        hidden, token_lengths = self.encoder(batch, lengths)
        tokens = self.quantizer._codebook.encode(hidden)
        keep = _keep(token_lengths, tokens.shape[1])
        return tokens * keep, token_lengths.long()

    def _quantize_windows(self, mels: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's mixed batch: every mel (or 30 s window of one) padded to 3000
        frames and encoded together; a long mel's windows trimmed and joined."""
        segments: list[torch.Tensor] = []
        owners: list[tuple[int, bool]] = []
        for index, mel in enumerate(mels):
            frames = mel.shape[1]
            if frames <= WINDOW_FRAMES:
                segments.append(mel)
                owners.append((index, False))
                continue
            for start in range(0, frames, STRIDE_FRAMES):
                segments.append(mel[:, start : min(start + WINDOW_FRAMES, frames)])
                owners.append((index, True))
        tokens, lengths = self._encode(segments, pad_to=WINDOW_FRAMES)
        pieces: list[list[torch.Tensor]] = [[] for _ in mels]
        for row, (index, _) in enumerate(owners):
            pieces[index].append(tokens[row, : int(lengths[row])])
        joined = []
        for index, parts in enumerate(pieces):
            if not any(owner == (index, True) for owner in owners):
                joined.append(parts[0])
                continue
            kept = [
                part[
                    (TRIM_TOKENS if i else 0) : (len(part) if i == len(parts) - 1 else -TRIM_TOKENS)
                ]
                for i, part in enumerate(parts)
            ]
            joined.append(torch.cat(kept))
        out = torch.zeros(len(mels), max(len(j) for j in joined), dtype=torch.long)
        for row, values in enumerate(joined):
            out[row, : len(values)] = values
        return out.to(tokens.device), torch.tensor([len(j) for j in joined], device=tokens.device)
