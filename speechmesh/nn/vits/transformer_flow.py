"""VITS2's transformer coupling flow (`flow` upstream when use_transformer_flow, as
MeloTTS has it): mean-only couplings whose shift comes from a speaker-conditioned
relative-attention transformer instead of VITS's WaveNet, between parameter-free flips.

Sizes the design fixes, not the configs: the transformer's feed-forward kernel is 5 and
the speaker condition enters its third layer; its depth is the config's
n_layers_trans_flow (upstream asserts 3). Parameters are not shared between couplings
(flow_share_parameter false, as released), so there is no `flow.wn`.
"""

from __future__ import annotations

import torch
from torch import nn

from speechmesh.nn.vits.flow import Flip
from speechmesh.nn.vits.text_encoder import Encoder

FLOW_KERNEL = 5


class TransformerCouplingLayer(nn.Module):
    """The second half shifted by a transformer of the first (`pre`, `enc`, `post`)."""

    def __init__(
        self,
        channels: int,
        hidden: int,
        filter_channels: int,
        heads: int,
        layers: int,
        gin: int,
    ) -> None:
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = Encoder(hidden, filter_channels, heads, layers, FLOW_KERNEL, gin=gin)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool
    ) -> torch.Tensor:
        first, second = x.split(self.half, dim=1)
        shift = self.post(self.enc(self.pre(first) * mask, mask, g=g)) * mask
        second = (second - shift if reverse else second + shift) * mask
        return torch.cat([first, second], dim=1)


class TransformerFlow(nn.Module):
    """`couplings` transformer couplings, each followed by a flip."""

    def __init__(
        self,
        channels: int,
        hidden: int,
        filter_channels: int,
        heads: int,
        layers: int,
        couplings: int,
        gin: int,
    ) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        for _ in range(couplings):
            modules += [
                TransformerCouplingLayer(channels, hidden, filter_channels, heads, layers, gin),
                Flip(),
            ]
        self.flows = nn.ModuleList(modules)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, reverse: bool = False
    ) -> torch.Tensor:
        for layer in reversed(self.flows) if reverse else self.flows:
            x = layer(x) if isinstance(layer, Flip) else layer(x, mask, g, reverse)
        return x
