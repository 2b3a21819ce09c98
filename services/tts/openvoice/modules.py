"""The base speaker's VITS (SynthesizerTrn), with the official module names so
checkpoint keys load as published: text encoder `enc_p`, duration predictors `sdp` and
`dp`, speaker table `emb_g`, flow `flow`, decoder `dec`, and the posterior encoder
`enc_q`, which inference never runs but the checkpoint carries.

The text encoder has no speaker condition; the speaker's row of emb_g conditions the
SDP, the DP, the flow and the decoder.
"""

from __future__ import annotations

import torch
from torch import nn

from speechmesh.nn.vits.config import Scales
from speechmesh.nn.vits.decoder import Generator
from speechmesh.nn.vits.duration import DurationPredictor, StochasticDurationPredictor, expand
from speechmesh.nn.vits.flow import Flow, PosteriorEncoder
from speechmesh.nn.vits.text_encoder import TextEncoder
from speechmesh.services.tts.openvoice.config import BaseSpeakerConfig


class SynthesizerTrn(nn.Module):
    def __init__(self, config: BaseSpeakerConfig) -> None:
        super().__init__()
        self.config = config
        inter, hidden, gin = config.inter_channels, config.hidden_channels, config.gin_channels
        self.enc_p = TextEncoder(
            len(config.symbols),
            inter,
            hidden,
            config.filter_channels,
            config.n_heads,
            config.n_layers,
            config.kernel_size,
        )
        self.sdp = StochasticDurationPredictor(hidden, gin)
        self.dp = DurationPredictor(hidden, gin)
        self.emb_g = nn.Embedding(config.n_speakers, gin)
        self.flow = Flow(inter, hidden, gin)
        self.dec = Generator(config)
        self.enc_q = PosteriorEncoder(config.spec_channels, inter, hidden, gin)

    def infer(
        self, ids: list[int], speaker: int, scales: Scales, generator: torch.Generator
    ) -> torch.Tensor:
        """Audio [frames × hop] of one piece's ids. Two draws from `generator`, always
        made (even at noise 0), in the reference's order: the SDP's [1, 2, T_x], then
        the prior's [1, inter, T_y] (strided as the expanded mean is)."""
        device = self.emb_g.weight.device
        x_ids = torch.tensor([ids], dtype=torch.long, device=device)
        x, mean, log_scale, x_mask = self.enc_p(x_ids, torch.tensor([len(ids)], device=device))
        g = self.emb_g(torch.tensor([speaker], device=device)).unsqueeze(-1)  # [1, gin, 1]
        sdp_noise = torch.randn((1, 2, x.size(2)), generator=generator).to(device)
        logw = self.sdp(
            x, x_mask, g, sdp_noise * scales.noise_scale_w
        ) * scales.sdp_ratio + self.dp(x, x_mask, g) * (1 - scales.sdp_ratio)
        durations = torch.ceil(torch.exp(logw) * x_mask * scales.length_scale)
        path, y_mask = expand(durations, x_mask)
        mean = torch.matmul(path, mean.transpose(1, 2)).transpose(1, 2)  # [1, inter, T_y]
        log_scale = torch.matmul(path, log_scale.transpose(1, 2)).transpose(1, 2)
        # As the reference's randn_like: a normal fill of a tensor with the expanded
        # mean's strides (a transposed product), which draws in its own order.
        prior_noise = torch.empty_strided(mean.shape, mean.stride()).normal_(generator=generator)
        prior_noise = prior_noise.to(device)
        z_p = mean + prior_noise * torch.exp(log_scale) * scales.noise_scale
        z = self.flow(z_p, y_mask, g, reverse=True)
        audio: torch.Tensor = self.dec(z * y_mask, g)
        return audio[0, 0]
