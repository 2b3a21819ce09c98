"""VITS's HiFi-GAN decoder (`dec` upstream): latent frames → waveform, hop samples a frame.

Leaky ReLU slope 0.1 inside, 0.01 (torch's default) before the last convolution, whose
bias is absent; tanh at the output. The decoder adds a global condition after its first
convolution.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

UPSAMPLE_SLOPE = 0.1


class DecoderShape(Protocol):
    """The config fields the decoder is built from (a family's config has them)."""

    @property
    def inter_channels(self) -> int: ...
    @property
    def gin_channels(self) -> int: ...
    @property
    def resblock(self) -> str: ...
    @property
    def resblock_kernel_sizes(self) -> tuple[int, ...]: ...
    @property
    def resblock_dilation_sizes(self) -> tuple[tuple[int, ...], ...]: ...
    @property
    def upsample_rates(self) -> tuple[int, ...]: ...
    @property
    def upsample_initial_channel(self) -> int: ...
    @property
    def upsample_kernel_sizes(self) -> tuple[int, ...]: ...


class ResBlock1(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=(kernel * d - d) // 2)
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for first, second in zip(self.convs1, self.convs2, strict=True):
            inner = first(F.leaky_relu(x, UPSAMPLE_SLOPE))
            x = x + second(F.leaky_relu(inner, UPSAMPLE_SLOPE))
        return x


class ResBlock2(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=(kernel * d - d) // 2)
            for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, UPSAMPLE_SLOPE))
        return x


class Generator(nn.Module):
    """HiFi-GAN: latent frames → waveform, hop_length samples per frame."""

    def __init__(self, config: DecoderShape) -> None:
        super().__init__()
        base = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(config.inter_channels, base, 7, padding=3)
        self.cond = nn.Conv1d(config.gin_channels, base, 1)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(base // 2**i, base // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(
                zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True)
            )
        )
        block = ResBlock1 if config.resblock == "1" else ResBlock2
        self.kernels = len(config.resblock_kernel_sizes)
        self.resblocks = nn.ModuleList(
            block(base // 2 ** (i + 1), k, tuple(d))
            for i in range(len(self.ups))
            for k, d in zip(
                config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True
            )
        )
        self.conv_post = nn.Conv1d(base // 2 ** len(self.ups), 1, 7, padding=3, bias=False)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x) + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, UPSAMPLE_SLOPE))
            blocks = self.resblocks[i * self.kernels : (i + 1) * self.kernels]
            x = sum((block(x) for block in blocks), torch.zeros_like(x)) / self.kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))
