"""BigVGAN v2 vocoder (nvidia/bigvgan_v2_22khz_80band_256x): mel → waveform, 256 samples a frame.

conv_pre → per upsampling stage: a transposed conv, then the mean of AMP blocks
(kernels 3/7/11, dilations 1/3/5), each pair of convs preceded by an anti-aliased
SnakeBeta (×2 upsample with a 12-tap Kaiser sinc, activation, low-pass ×2 down,
replicate padding) → anti-aliased SnakeBeta → conv_post (no bias) → clamp to ±1
(no tanh in v2). SnakeBeta: x + sin²(x·e^α) / (e^β + 1e-9). Weight norm is folded
at load; the resampling filters come from the checkpoint.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.indextts.checkpoint import mark_weight_norm
from speechmesh.services.indextts.config import BigVGANConfig


def kaiser_sinc(cutoff: float, half_width: float, kernel: int) -> torch.Tensor:
    half = kernel // 2
    delta_f = 4 * half_width
    attenuation = 2.285 * (half - 1) * math.pi * delta_f + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel, beta=beta, periodic=False)
    time = torch.arange(-half, half) + 0.5 if kernel % 2 == 0 else torch.arange(kernel) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).view(1, 1, kernel)


class UpSample(nn.Module):
    def __init__(self, ratio: int = 2, kernel: int = 12) -> None:
        super().__init__()
        self.ratio = ratio
        self.pad = kernel // ratio - 1
        self.crop_left = self.pad * ratio + (kernel - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc(0.5 / ratio, 0.6 / ratio, kernel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(
            x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels
        )
        return x[..., self.crop_left : -self.crop_right]


class LowPass(nn.Module):
    def __init__(self, ratio: int = 2, kernel: int = 12) -> None:
        super().__init__()
        self.stride = ratio
        self.pad = (kernel // 2 - int(kernel % 2 == 0), kernel // 2)
        self.register_buffer("filter", kaiser_sinc(0.5 / ratio, 0.6 / ratio, kernel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.pad, mode="replicate")
        return F.conv1d(
            x, self.filter.expand(x.shape[1], -1, -1), stride=self.stride, groups=x.shape[1]
        )


class DownSample(nn.Module):
    def __init__(self, ratio: int = 2, kernel: int = 12) -> None:
        super().__init__()
        self.lowpass = LowPass(ratio, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class SnakeBeta(nn.Module):
    def __init__(self, channels: int, logscale: bool = True) -> None:
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        beta = self.beta[None, :, None]
        if self.logscale:
            alpha, beta = alpha.exp(), beta.exp()
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)


class Activation1d(nn.Module):
    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.act = activation
        self.upsample = UpSample()
        self.downsample = DownSample()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _conv(channels: int, kernel: int, dilation: int) -> nn.Conv1d:
    padding = (kernel * dilation - dilation) // 2
    return mark_weight_norm(
        nn.Conv1d(channels, channels, kernel, 1, dilation=dilation, padding=padding)
    )  # type: ignore[return-value]


class AMPBlock1(nn.Module):
    def __init__(
        self, channels: int, kernel: int, dilations: tuple[int, ...], logscale: bool
    ) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(channels, kernel, d) for d in dilations)
        self.convs2 = nn.ModuleList(_conv(channels, kernel, 1) for _ in dilations)
        count = 2 * len(dilations)
        self.activations = nn.ModuleList(
            Activation1d(SnakeBeta(channels, logscale)) for _ in range(count)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts = list(self.activations)
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts[::2], acts[1::2], strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x


class BigVGAN(nn.Module):
    def __init__(self, config: BigVGANConfig) -> None:
        super().__init__()
        if config.resblock != "1" or config.activation != "snakebeta":
            raise FailedPrecondition(
                "BigVGAN: only resblock '1' with snakebeta (the v2 22 kHz model) is supported"
            )
        self.config = config
        base = config.upsample_initial_channel
        self.conv_pre = mark_weight_norm(nn.Conv1d(config.num_mels, base, 7, 1, padding=3))
        self.ups = nn.ModuleList(
            nn.ModuleList(
                [
                    mark_weight_norm(
                        nn.ConvTranspose1d(
                            base // 2**i, base // 2 ** (i + 1), k, u, padding=(k - u) // 2
                        )
                    )
                ]
            )
            for i, (u, k) in enumerate(
                zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True)
            )
        )
        self.resblocks = nn.ModuleList()
        channels = base
        for i in range(len(self.ups)):
            channels = base // 2 ** (i + 1)
            for kernel, dilations in zip(
                config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True
            ):
                self.resblocks.append(AMPBlock1(channels, kernel, dilations, config.snake_logscale))
        self.activation_post = Activation1d(SnakeBeta(channels, config.snake_logscale))
        self.conv_post = mark_weight_norm(
            nn.Conv1d(channels, 1, 7, 1, padding=3, bias=config.use_bias_at_final)
        )
        self.kernels = len(config.resblock_kernel_sizes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, frames) → (B, 1, frames × 256), in [-1, 1]."""
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up[0](x)
            blocks = self.resblocks[i * self.kernels : (i + 1) * self.kernels]
            x = sum(block(x) for block in blocks) / self.kernels  # type: ignore[assignment]
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.config.use_tanh_at_final else x.clamp(-1.0, 1.0)


def read_config(folder: Path) -> BigVGANConfig:
    """The inference fields of a BigVGAN config.json."""
    path = Path(folder) / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FailedPrecondition(f"BigVGAN config {path} is not readable JSON: {error}") from error
    fields = BigVGANConfig.__dataclass_fields__
    values = {}
    for name in fields:
        if name in raw:
            value = raw[name]
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            values[name] = value
    return BigVGANConfig(**values)
