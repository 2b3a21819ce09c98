"""VoiceFixer's vocoder (the TFGAN generator of `model.ckpt-1490000_trimed.pt`): mel → 44.1 kHz.

A conditioning net of five weight-normed convolutions (ELU), then four upsampling
stages (×7, ×7, ×3, ×3 = 441 samples per frame), each a transposed convolution fed
x + sin(x) and followed by a stack of dilated residual convolutions; tanh out. Each
upsampling stage also holds a `skip_conv` that the released inference computes and
discards: it is loaded (the checkpoint has it) and not run. Widths come from the
checkpoint (official: condition 512, channels 1024 halving per stage, 8 residual
layers per stack).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

UPSAMPLE_SCALES = (7, 7, 3, 3)
GENERATOR_SLOPE = 0.2
STACK_SLOPE = 0.01
CONDITION_LAYERS = 5
# The vocoder's input normalisation: mel ÷ (A·e^(B·k)) for band k = 1..n_mel, in dB, −20,
# scaled from [−115, 0] dB to [−4, 4].
BAND_GAIN_A, BAND_GAIN_B = 18.8927416350036, 0.0269863588184314
MIN_DB, MAX_ABS = -115.0, 4.0


@dataclass(frozen=True)
class MelVocoderSizes:
    n_mel: int = 128
    condition: int = 512
    channels: int = 1024
    depth: int = 8


class UpsampleNet(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, scale: int) -> None:
        super().__init__()
        self.layer = nn.ConvTranspose1d(
            channels_in,
            channels_out,
            scale * 2,
            scale,
            padding=scale // 2 + scale % 2,
            output_padding=scale % 2,
        )
        self.skip_conv = nn.Conv1d(channels_in, channels_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x + torch.sin(x))
        return out


class ResStack(nn.Module):
    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.LeakyReLU(STACK_SLOPE),
                nn.Conv1d(channels, channels, 3, dilation=3**i, padding=3**i),
                nn.LeakyReLU(STACK_SLOPE),
                nn.Conv1d(channels, channels, 3, padding=1),
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


class MelVocoder(nn.Module):
    """Normalised mel [batch, n_mel, frames] → audio [batch, 1, frames × 441]."""

    def __init__(self, sizes: MelVocoderSizes) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = sizes.n_mel
        for _ in range(CONDITION_LAYERS):
            layers += [nn.Conv1d(width, sizes.condition, 3, padding=1), nn.ELU()]
            width = sizes.condition
        self.condnet = nn.Sequential(*layers)
        act = nn.LeakyReLU(GENERATOR_SLOPE)
        stages: list[nn.Module] = [nn.ReflectionPad1d(3), nn.Conv1d(width, sizes.channels, 7), act]
        channels = sizes.channels
        for scale in UPSAMPLE_SCALES:
            stages += [
                UpsampleNet(channels, channels // 2, scale),
                ResStack(channels // 2, sizes.depth),
                act,
            ]
            channels //= 2
        stages += [nn.ReflectionPad1d(3), nn.Conv1d(channels, 1, 7), nn.Tanh()]
        self.generator = nn.Sequential(*stages)
        self.register_buffer(
            "band_gain",
            BAND_GAIN_A * torch.exp(BAND_GAIN_B * torch.arange(1, sizes.n_mel + 1)),
            persistent=False,
        )

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.generator(self.condnet(conditions))
        return out

    def normalise(self, mel: torch.Tensor) -> torch.Tensor:
        """Linear mel [batch, frames, n_mel] → the vocoder's input [batch, n_mel, frames + pad]:
        per-band gain, dB − 20, scaled to ±4, then T % 2 + 4 frames of −4 appended."""
        db = 20 * torch.log10((mel.abs() / self.band_gain).clamp_min(1e-5)) - 20.0
        scaled = (2 * MAX_ABS * (db - MIN_DB) / -MIN_DB - MAX_ABS).clamp(-MAX_ABS, MAX_ABS)
        conditions = scaled.transpose(1, 2)
        frames = conditions.size(-1)
        return F.pad(conditions, (0, frames % 2 + 4), value=-MAX_ABS)
