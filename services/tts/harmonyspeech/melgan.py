"""The multi-band MelGAN generator and its PQMF synthesis filter bank.

The generator (kan-bayashi's MelGAN design) maps a mel spectrogram to `out_channels`
sub-band signals: a padded input convolution, then per upsampling scale a transposed
convolution and `stacks` dilated residual stacks, then a padded output convolution
and tanh. With 4 output channels a pseudo-QMF bank (62 taps, cutoff 0.142, Kaiser β 9)
joins the sub-bands into one signal at `bands` times their rate.

Layer indices inside `melgan` match the `model.generator` keys of the official
checkpoint, whose weight norm (weight_g / weight_v) is folded at load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.runtime.errors import FailedPrecondition

PQMF_TAPS = 62
PQMF_CUTOFF = 0.142
PQMF_BETA = 9.0
ACTIVATIONS = ("LeakyReLU", "ReLU", "ELU", "GELU")
PADDINGS = ("ReflectionPad1d", "ReplicationPad1d")


@dataclass(frozen=True)
class MelGanConfig:
    """The generator's constructor arguments, as `vocoder/config.json` gives them."""

    in_channels: int
    out_channels: int
    kernel_size: int
    channels: int
    bias: bool
    upsample_scales: tuple[int, ...]
    stack_kernel_size: int
    stacks: int
    nonlinear_activation: str
    nonlinear_activation_params: dict[str, Any]
    pad: str
    pad_params: dict[str, Any]
    use_final_nonlinear_activation: bool
    use_weight_norm: bool
    use_causal_conv: bool

    @classmethod
    def from_json(cls, data: Any, origin: str) -> MelGanConfig:
        """From a parsed config.json: the arguments under "model", or at the top level."""
        section = data.get("model", data) if isinstance(data, dict) else None
        if not isinstance(section, dict):
            raise FailedPrecondition(f"{origin} is not a JSON object")
        missing = [f.name for f in fields(cls) if f.name not in section]
        if missing:
            raise FailedPrecondition(f"{origin} lacks {', '.join(missing)}")
        values = {f.name: section[f.name] for f in fields(cls)}
        values["upsample_scales"] = tuple(values["upsample_scales"])
        config = cls(**values)
        config.check(origin)
        return config

    def check(self, origin: str) -> None:
        def fail(what: str) -> FailedPrecondition:
            return FailedPrecondition(f"{origin}: {what}")

        sizes = ("in_channels", "out_channels", "kernel_size", "channels", "stack_kernel_size")
        for name in (*sizes, "stacks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise fail(f"{name} must be a positive integer, got {value!r}")
        scales = self.upsample_scales
        if not scales or not all(isinstance(s, int) and s >= 1 for s in scales):
            raise fail(f"upsample_scales must be positive integers, got {list(scales)}")
        if self.use_causal_conv:
            raise fail("use_causal_conv is true; only the non-causal generator is supported")
        if self.kernel_size % 2 == 0 or self.stack_kernel_size % 2 == 0:
            raise fail("kernel_size and stack_kernel_size must be odd")
        if self.channels % (2 ** len(scales)):
            raise fail(f"channels {self.channels} must divide by 2^{len(scales)}")
        if self.nonlinear_activation not in ACTIVATIONS:
            raise fail(f"nonlinear_activation must be one of {list(ACTIVATIONS)}")
        if self.pad not in PADDINGS:
            raise fail(f"pad must be one of {list(PADDINGS)}")

    @property
    def bands(self) -> int:
        return self.out_channels

    @property
    def samples_per_frame(self) -> int:
        return math.prod(self.upsample_scales) * self.out_channels


class ResidualStack(nn.Module):
    """activation → pad → dilated conv → activation → 1×1 conv, plus a 1×1 skip conv."""

    def __init__(self, config: MelGanConfig, channels: int, dilation: int):
        super().__init__()
        c = config
        self.stack = nn.Sequential(
            _activation(c),
            _pad(c, (c.stack_kernel_size - 1) // 2 * dilation),
            nn.Conv1d(channels, channels, c.stack_kernel_size, dilation=dilation, bias=c.bias),
            _activation(c),
            nn.Conv1d(channels, channels, 1, bias=c.bias),
        )
        self.skip_layer = nn.Conv1d(channels, channels, 1, bias=c.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(x) + self.skip_layer(x)


def _activation(config: MelGanConfig) -> nn.Module:
    module: nn.Module = getattr(nn, config.nonlinear_activation)(
        **config.nonlinear_activation_params
    )
    return module


def _pad(config: MelGanConfig, size: int) -> nn.Module:
    module: nn.Module = getattr(nn, config.pad)(size, **config.pad_params)
    return module


class MelGanGenerator(nn.Module):
    """[B, in_channels, frames] → [B, out_channels, frames · Π upsample_scales]."""

    def __init__(self, config: MelGanConfig):
        super().__init__()
        c = config
        layers: list[nn.Module] = [
            _pad(c, (c.kernel_size - 1) // 2),
            nn.Conv1d(c.in_channels, c.channels, c.kernel_size, bias=c.bias),
        ]
        channels = c.channels
        for scale in c.upsample_scales:
            layers += [
                _activation(c),
                nn.ConvTranspose1d(
                    channels,
                    channels // 2,
                    scale * 2,
                    stride=scale,
                    padding=scale // 2 + scale % 2,
                    output_padding=scale % 2,
                    bias=c.bias,
                ),
            ]
            channels //= 2
            layers += [ResidualStack(c, channels, c.stack_kernel_size**j) for j in range(c.stacks)]
        layers += [
            _activation(c),
            _pad(c, (c.kernel_size - 1) // 2),
            nn.Conv1d(channels, c.out_channels, c.kernel_size, bias=c.bias),
        ]
        if c.use_final_nonlinear_activation:
            layers.append(nn.Tanh())
        self.melgan = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.melgan(mel)


def prototype_filter(
    taps: int = PQMF_TAPS, cutoff: float = PQMF_CUTOFF, beta: float = PQMF_BETA
) -> np.ndarray:
    """The Kaiser-windowed low-pass prototype of the PQMF bank, taps + 1 long."""
    n = np.arange(taps + 1) - taps / 2
    ideal = cutoff * np.sinc(cutoff * n)  # sin(π·cutoff·n) / (π·n), cutoff at n = 0
    return ideal * np.kaiser(taps + 1, beta)


class PqmfSynthesis(nn.Module):
    """Joins `bands` sub-band signals [B, bands, T] into one [B, 1, bands · T]."""

    def __init__(self, bands: int, taps: int = PQMF_TAPS):
        super().__init__()
        prototype = prototype_filter(taps)
        n = np.arange(taps + 1) - taps / 2
        filters = np.stack(
            [
                2
                * prototype
                * np.cos((2 * k + 1) * np.pi / (2 * bands) * n - (-1) ** k * np.pi / 4)
                for k in range(bands)
            ]
        )
        self.bands = bands
        self.half = taps // 2
        self.register_buffer("filters", torch.from_numpy(filters).float()[None], persistent=False)

    def forward(self, subbands: torch.Tensor) -> torch.Tensor:
        batch, bands, length = subbands.shape
        # Upsample by zero insertion, scaled by the band count to keep the power.
        spread = subbands.new_zeros(batch, bands, length * bands)
        spread[:, :, :: self.bands] = subbands * self.bands
        return F.conv1d(F.pad(spread, (self.half, self.half)), self.filters)


def context_frames(config: MelGanConfig, taps: int = PQMF_TAPS) -> int:
    """Frames either side beyond which the input cannot change a frame's audio: the
    receptive field of every layer, summed, rounded up, plus one frame of margin."""
    reach = (config.kernel_size - 1) / 2  # input convolution, at the frame rate
    rate = 1
    for scale in config.upsample_scales:
        reach += 2 / rate  # a transposed convolution of kernel 2s reads two inputs
        rate *= scale
        half = (config.stack_kernel_size - 1) // 2
        reach += sum(half * config.stack_kernel_size**j for j in range(config.stacks)) / rate
    reach += (config.kernel_size - 1) / 2 / rate
    if config.bands > 1:
        reach += taps / 2 / (rate * config.bands)
    return math.ceil(reach) + 1


def min_frames(config: MelGanConfig) -> int:
    """The fewest frames the generator takes: reflection padding needs more samples than
    it pads, at every layer's rate."""
    needed = (config.kernel_size - 1) // 2 + 1
    rate = 1
    widest = (config.stack_kernel_size - 1) // 2 * config.stack_kernel_size ** (config.stacks - 1)
    for scale in config.upsample_scales:
        rate *= scale
        needed = max(needed, widest // rate + 1)
    return needed
