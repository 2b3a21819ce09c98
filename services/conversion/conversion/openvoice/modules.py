"""The OpenVoice tone-colour converter's networks (VITS posterior encoder, coupling flow,
HiFi-GAN decoder, reference encoder), with the official module names so checkpoint keys
load as published. Weight norm is folded into plain weights at load time.

Sizes fixed by the reference design, not its config: posterior WN kernel 5 with 16
layers; four mean-only coupling layers (WN kernel 5, 4 layers) between parameter-free
flips; a reference encoder of six stride-2 3×3 convolutions ([32, 32, 64, 64, 128,
128] channels) and a 128-unit GRU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.services.conversion.conversion.openvoice.config import ConverterConfig

UPSAMPLE_SLOPE = 0.1  # leaky ReLU inside the decoder; its very last one uses 0.01
POSTERIOR_KERNEL, POSTERIOR_LAYERS = 5, 16
FLOW_KERNEL, FLOW_LAYERS, FLOW_COUPLINGS = 5, 4, 4
REFERENCE_CHANNELS = (32, 32, 64, 64, 128, 128)
REFERENCE_GRU = 128


def sequence_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[batch, 1, frames] float mask: 1 inside each sequence's length."""
    positions = torch.arange(frames, device=lengths.device)
    return (positions[None, :] < lengths[:, None]).unsqueeze(1).float()


class WaveNet(nn.Module):
    """Gated dilated convolutions with a global condition (module name `enc` upstream)."""

    def __init__(self, hidden: int, kernel: int, layers: int, gin: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.in_layers = nn.ModuleList(
            nn.Conv1d(hidden, 2 * hidden, kernel, padding=kernel // 2) for _ in range(layers)
        )
        self.res_skip_layers = nn.ModuleList(
            nn.Conv1d(hidden, 2 * hidden if i < layers - 1 else hidden, 1) for i in range(layers)
        )
        self.cond_layer = nn.Conv1d(gin, 2 * hidden * layers, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        output = torch.zeros_like(x)
        condition = self.cond_layer(g)
        last = len(self.in_layers) - 1
        for i, (in_layer, res_skip) in enumerate(
            zip(self.in_layers, self.res_skip_layers, strict=True)
        ):
            gate_in = in_layer(x) + condition[:, 2 * i * self.hidden : 2 * (i + 1) * self.hidden]
            acts = torch.tanh(gate_in[:, : self.hidden]) * torch.sigmoid(gate_in[:, self.hidden :])
            out = res_skip(acts)
            if i < last:
                x = (x + out[:, : self.hidden]) * mask
                output = output + out[:, self.hidden :]
            else:
                output = output + out
        return output * mask


class PosteriorEncoder(nn.Module):
    def __init__(self, spec_channels: int, inter: int, hidden: int, gin: int) -> None:
        super().__init__()
        self.inter = inter
        self.pre = nn.Conv1d(spec_channels, hidden, 1)
        self.enc = WaveNet(hidden, POSTERIOR_KERNEL, POSTERIOR_LAYERS, gin)
        self.proj = nn.Conv1d(hidden, 2 * inter, 1)

    def forward(
        self, spec: torch.Tensor, mask: torch.Tensor, g: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.enc(self.pre(spec) * mask, mask, g)
        stats = self.proj(x) * mask
        mean, log_scale = stats.split(self.inter, dim=1)
        return mean, log_scale


class CouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half shifted by a function of the first."""

    def __init__(self, channels: int, hidden: int, gin: int) -> None:
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, FLOW_KERNEL, FLOW_LAYERS, gin)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool
    ) -> torch.Tensor:
        first, second = x.split(self.half, dim=1)
        shift = self.post(self.enc(self.pre(first) * mask, mask, g)) * mask
        second = (second - shift if reverse else second + shift) * mask
        return torch.cat([first, second], dim=1)


class Flip(nn.Module):
    """Reverses the channel order between couplings (no parameters)."""

    def forward(self, x: torch.Tensor, *_: object, **__: object) -> torch.Tensor:
        return torch.flip(x, [1])


class Flow(nn.Module):
    def __init__(self, channels: int, hidden: int, gin: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(FLOW_COUPLINGS):
            layers += [CouplingLayer(channels, hidden, gin), Flip()]
        self.flows = nn.ModuleList(layers)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool = False
    ) -> torch.Tensor:
        for layer in reversed(self.flows) if reverse else self.flows:
            x = layer(x, mask, g, reverse) if isinstance(layer, CouplingLayer) else layer(x)
        return x


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

    def __init__(self, config: ConverterConfig) -> None:
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


class ReferenceEncoder(nn.Module):
    """Linear spectrogram [batch, frames, bins] → tone-colour embedding [batch, gin]."""

    def __init__(self, spec_channels: int, gin: int) -> None:
        super().__init__()
        channels = (1, *REFERENCE_CHANNELS)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1)
            for i in range(len(REFERENCE_CHANNELS))
        )
        bins = spec_channels
        for _ in REFERENCE_CHANNELS:
            bins = (bins - 3 + 2) // 2 + 1
        self.gru = nn.GRU(REFERENCE_CHANNELS[-1] * bins, REFERENCE_GRU, batch_first=True)
        self.proj = nn.Linear(REFERENCE_GRU, gin)
        self.layernorm = nn.LayerNorm(spec_channels)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        out = self.layernorm(spec.unsqueeze(1))
        for conv in self.convs:
            out = F.relu(conv(out))
        batch, frames = out.size(0), out.size(2)
        out = out.transpose(1, 2).reshape(batch, frames, -1)
        _, hidden = self.gru(out)
        embedding: torch.Tensor = self.proj(hidden.squeeze(0))
        return embedding


class ToneColorConverter(nn.Module):
    """The converter checkpoint's modules: enc_q, flow, dec, ref_enc."""

    def __init__(self, config: ConverterConfig) -> None:
        super().__init__()
        self.config = config
        spec = config.spec_channels
        inter, hidden, gin = config.inter_channels, config.hidden_channels, config.gin_channels
        self.enc_q = PosteriorEncoder(spec, inter, hidden, gin)
        self.flow = Flow(inter, hidden, gin)
        self.dec = Generator(config)
        self.ref_enc = ReferenceEncoder(spec, gin)

    def convert(
        self,
        spec: torch.Tensor,
        lengths: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        tau: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Audio [batch, 1, frames × hop] of `spec` [batch, bins, frames] in the target voice.

        source/target: [batch, gin, 1]; noise: a standard normal draw shaped like the
        posterior mean, scaled by tau (0: deterministic).
        """
        mask = sequence_mask(lengths, spec.size(2))
        # V2 (zero_g) conditions encoder and decoder on zeros, so only the flow sees voices.
        plain_source = torch.zeros_like(source) if self.config.zero_g else source
        plain_target = torch.zeros_like(target) if self.config.zero_g else target
        mean, log_scale = self.enc_q(spec, mask, plain_source)
        z = (mean + noise * tau * torch.exp(log_scale)) * mask
        z_p = self.flow(z, mask, source)
        z_hat = self.flow(z_p, mask, target, reverse=True)
        audio: torch.Tensor = self.dec(z_hat * mask, plain_target)
        return audio
