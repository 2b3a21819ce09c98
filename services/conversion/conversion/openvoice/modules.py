"""The OpenVoice tone-colour converter's networks: VITS's posterior encoder, coupling flow
and HiFi-GAN decoder (shared, speechmesh/nn/vits) and the reference encoder, with the
official module names so checkpoint keys load as published. Weight norm is folded into
plain weights at load time.

Sizes fixed by the reference design, not its config: a reference encoder of six
stride-2 3×3 convolutions ([32, 32, 64, 64, 128, 128] channels) and a 128-unit GRU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.nn.vits.decoder import Generator
from speechmesh.nn.vits.flow import Flow, PosteriorEncoder, sequence_mask
from speechmesh.services.conversion.conversion.openvoice.config import ConverterConfig

REFERENCE_CHANNELS = (32, 32, 64, 64, 128, 128)
REFERENCE_GRU = 128


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
