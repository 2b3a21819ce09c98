"""VITS's WaveNet-conditioned networks: the posterior encoder and the mean-only coupling
flow, with the official module names (`enc`, `pre`, `post`, `flows`). Weight norm is
folded into plain weights at load time.

Sizes the VITS design fixes, not its configs: posterior WN kernel 5 with 16 layers; four
mean-only coupling layers (WN kernel 5, 4 layers) between parameter-free flips; dilation
rate 1 throughout.
"""

from __future__ import annotations

import torch
from torch import nn

POSTERIOR_KERNEL, POSTERIOR_LAYERS = 5, 16
FLOW_KERNEL, FLOW_LAYERS, FLOW_COUPLINGS = 5, 4, 4


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
    """Linear spectrogram → the posterior's mean and log scale (`enc_q` upstream)."""

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
    """The prior/posterior flow (`flow` upstream): couplings and flips."""

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
