"""HiFT vocoder (HiFTNet: neural source filter + iSTFTNet), 80-bin mel at 50 Hz → 24 kHz.

Key names are the official `mel2wav.*`: `f0_predictor.condnet.{0,2,4,6,8}` and
`f0_predictor.classifier`; `m_source.l_linear`; `conv_pre`, `ups.N`, `resblocks.N`
and `source_resblocks.N` (`convs{1,2}.M`, Snake `activations{1,2}.M.alpha`),
`source_downs.N` (plain), `conv_post`. Every weight-normed convolution is stored as
`.parametrizations.weight.original{0,1}` (g, v); the loader folds them into plain
weights (checkpoint.py).

What changes numbers (as the reference):
  * F0: five k-3 ELU convolutions and a linear, |·|; upsampled ×480 by repetition.
  * source: 9 harmonics k·f0, phase 2π·(cumsum(k·f0/24000) mod 1) plus a random
    offset per harmonic (uniform in [−π, π), the fundamental's 0), amplitude 0.1
    where f0 > 10 Hz; Gaussian noise of std 0.003 voiced, 0.1/3 unvoiced; then a
    linear over the harmonics and tanh. The random draws, in the reference's order
    from one generator: `rand(B, 9, 1)`, `randn(B, 9, samples)`, `randn(B, samples, 1)`
    (the last is drawn and unused).
  * the source's 16-point STFT (hop 4, periodic Hann, centred) joins each upsampling
    stage through a strided convolution and a resblock; the last stage is reflect-padded
    by one frame on the left; the resblocks (Snake, dilations 1/3/5) are averaged.
  * output: leaky ReLU at slope 0.01 (not the stages' 0.1), conv_post, magnitude
    exp(·) clipped at 100, phase sin(·), inverse STFT, clamped to ±0.99.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.nn.chatterbox.s3gen.config import SAMPLE_RATE, HiFTConfig


@dataclass(frozen=True)
class SourceNoise:
    """The source's random draws for one row (the reference's, in its order)."""

    phase: torch.Tensor  # (harmonics + 1, 1) uniform in [−π, π); row 0 is overwritten by 0
    noise: torch.Tensor  # (harmonics + 1, samples) standard normal

    @classmethod
    def draw(
        cls, harmonics: int, samples: int, generator: torch.Generator | None, device: torch.device
    ) -> SourceNoise:
        # Drawn on the CPU whatever the device, so a seed gives the same audio everywhere.
        phase = torch.rand(1, harmonics + 1, 1, generator=generator)
        phase = -math.pi + phase * (2 * math.pi)
        noise = torch.randn(1, harmonics + 1, samples, generator=generator)
        # The reference draws one more (its noise source, unused in inference).
        torch.randn(1, samples, 1, generator=generator)
        return cls(phase[0].to(device), noise[0].to(device))


class Snake(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        return x + (1.0 / (alpha + 1e-9)) * torch.sin(x * alpha).pow(2)


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_padding(kernel)) for _ in dilations
        )
        self.activations1 = nn.ModuleList(Snake(channels) for _ in dilations)
        self.activations2 = nn.ModuleList(Snake(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(
            self.convs1, self.convs2, self.activations1, self.activations2, strict=True
        ):
            x = c2(a2(c1(a1(x)))) + x
        return x


class F0Predictor(nn.Module):
    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        layers: dict[str, nn.Module] = {}
        for i in range(5):
            layers[str(2 * i)] = nn.Conv1d(
                in_channels if i == 0 else channels, channels, 3, padding=1
            )
        self.condnet = nn.ModuleDict(layers)
        self.classifier = nn.Linear(channels, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, T) → (B, T) Hz."""
        x = mel
        for conv in self.condnet.values():
            x = F.elu(conv(x))
        return torch.abs(self.classifier(x.transpose(1, 2)).squeeze(-1))


class SourceModule(nn.Module):
    def __init__(self, config: HiFTConfig) -> None:
        super().__init__()
        self.config = config
        self.l_linear = nn.Linear(config.nb_harmonics + 1, 1)

    def forward(
        self, f0: torch.Tensor, draws: SourceNoise, before: torch.Tensor | None = None
    ) -> torch.Tensor:
        """f0 (samples,) Hz at 24 kHz → (1, samples) excitation. `before` (harmonics + 1,),
        float64: each harmonic's phase in turns before the first sample, for a window of a
        longer output; none: 0."""
        c = self.config
        # Shapes (1, harmonics, samples) as the reference's, so reductions round alike.
        f0 = f0[None, None, :]
        harmonics = torch.arange(1, c.nb_harmonics + 2, device=f0.device, dtype=f0.dtype)
        steps = f0 * harmonics[None, :, None] / SAMPLE_RATE
        if before is None:
            turns = torch.cumsum(steps, dim=-1)
        else:
            # torch's CPU cumsum of float32 adds in float64 and rounds each sum to
            # float32: continued from `before` in float64, a window rounds the same.
            turns = torch.cumsum(steps.double(), dim=-1) + before.double()[None, :, None]
            turns = turns.to(steps.dtype)
        theta = 2 * math.pi * (turns % 1)
        phase = draws.phase.clone()[None]
        phase[:, 0] = 0
        sines = c.nsf_alpha * torch.sin(theta + phase)
        voiced = (f0 > c.nsf_voiced_threshold).to(f0.dtype)
        amplitude = voiced * c.nsf_sigma + (1 - voiced) * c.nsf_alpha / 3
        sines = sines * voiced + amplitude * draws.noise[None]
        return torch.tanh(self.l_linear(sines.transpose(1, 2))).transpose(1, 2)[0]


class HiFTGenerator(nn.Module):
    def __init__(self, config: HiFTConfig) -> None:
        super().__init__()
        c = self.config = config
        self.upsample = math.prod(c.upsample_rates) * c.hop
        self.f0_predictor = F0Predictor(c.in_channels, c.f0_channels)
        self.m_source = SourceModule(c)
        self.conv_pre = nn.Conv1d(c.in_channels, c.base_channels, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(
                c.base_channels // 2**i, c.base_channels // 2 ** (i + 1), k, u, padding=(k - u) // 2
            )
            for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes, strict=True))
        )
        rates = [1, *c.upsample_rates[::-1][:-1]]
        cumulative = [math.prod(rates[: i + 1]) for i in range(len(rates))][::-1]
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        bins = c.n_fft + 2
        for i, (u, k, d) in enumerate(
            zip(
                cumulative, c.source_resblock_kernel_sizes, c.source_resblock_dilations, strict=True
            )
        ):
            width = c.base_channels // 2 ** (i + 1)
            down = (
                nn.Conv1d(bins, width, 1)
                if u == 1
                else nn.Conv1d(bins, width, u * 2, u, padding=u // 2)
            )
            self.source_downs.append(down)
            self.source_resblocks.append(ResBlock(width, k, d))
        self.resblocks = nn.ModuleList(
            ResBlock(c.base_channels // 2 ** (i + 1), k, d)
            for i in range(len(self.ups))
            for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilations, strict=True)
        )
        width = c.base_channels // 2 ** len(self.ups)
        self.conv_post = nn.Conv1d(width, bins, 7, padding=3)
        # scipy.signal.get_window("hann", fftbins=True) in float64, then float32 (the reference)
        window = torch.hann_window(c.n_fft, periodic=True, dtype=torch.float64).float()
        self.register_buffer("stft_window", window, persistent=False)

    def source(self, mel: torch.Tensor, draws: SourceNoise) -> torch.Tensor:
        """(80, T) mel → (1, T·480) excitation."""
        f0 = self.f0_predictor(mel[None])[0]
        return self.m_source(f0.repeat_interleave(self.upsample), draws)

    def decode(self, mel: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """(80, T) mel and (1, T·480) excitation → (T·480,) audio."""
        c = self.config
        spec = torch.stft(
            source, c.n_fft, c.hop, c.n_fft, window=self.stft_window, return_complex=True
        )
        s = torch.cat([spec.real, spec.imag], dim=1)  # (1, 18, frames)
        x = self.conv_pre(mel[None])
        kernels = len(c.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, c.lrelu_slope))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + self.source_resblocks[i](self.source_downs[i](s))
            x = sum(self.resblocks[i * kernels + j](x) for j in range(kernels)) / kernels
        x = self.conv_post(F.leaky_relu(x))
        half = c.n_fft // 2 + 1
        magnitude = torch.clip(torch.exp(x[:, :half]), max=1e2)
        phase = torch.sin(x[:, half:])
        spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        audio = torch.istft(spec, c.n_fft, c.hop, c.n_fft, window=self.stft_window)
        return torch.clamp(audio, -c.audio_limit, c.audio_limit)[0]

    def forward(self, mel: torch.Tensor, draws: SourceNoise) -> tuple[torch.Tensor, torch.Tensor]:
        """One row: (80, T) mel → (T·480,) audio and its (1, T·480) excitation."""
        source = self.source(mel, draws)
        return self.decode(mel, source), source
