"""MeloTTS's VITS2 (SynthesizerTrn), with the official module names so checkpoint keys
load as published: text encoder `enc_p` (phone, tone and language embeddings and the
two BERT projections), duration predictors `sdp` and `dp`, speaker table `emb_g`, the
transformer coupling flow `flow`, decoder `dec`, and the posterior encoder `enc_q`,
which inference never runs but the checkpoint carries.

Unlike VITS, the speaker conditions the text encoder too (its third layer), as well as
the SDP, the DP, the flow and the decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from speechmesh.nn.vits.config import Scales
from speechmesh.nn.vits.decoder import Generator
from speechmesh.nn.vits.duration import DurationPredictor, StochasticDurationPredictor, expand
from speechmesh.nn.vits.flow import Flow, PosteriorEncoder, sequence_mask
from speechmesh.nn.vits.text_encoder import Encoder
from speechmesh.nn.vits.transformer_flow import TransformerFlow
from speechmesh.services.tts.melotts.config import MeloConfig

BERT_CHANNELS, JA_BERT_CHANNELS = 1024, 768
"""Widths of the two BERT feature inputs: `bert` (Chinese models' 1024-wide BERT) and
`ja_bert` (every other language's 768-wide BERT, English's included)."""


@dataclass(frozen=True)
class PhoneInput:
    """One piece as the model reads it: ids, tones and language ids of equal length, and
    the BERT features per phone ([1024, n] and [768, n]; one of them zeros)."""

    phones: list[int]
    tones: list[int]
    languages: list[int]
    bert: torch.Tensor
    ja_bert: torch.Tensor


class TextEncoder(nn.Module):
    def __init__(self, config: MeloConfig) -> None:
        super().__init__()
        hidden = config.hidden_channels
        self.hidden, self.inter = hidden, config.inter_channels
        self.emb = nn.Embedding(len(config.symbols), hidden)
        self.tone_emb = nn.Embedding(config.num_tones, hidden)
        self.language_emb = nn.Embedding(config.num_languages, hidden)
        self.bert_proj = nn.Conv1d(BERT_CHANNELS, hidden, 1)
        self.ja_bert_proj = nn.Conv1d(JA_BERT_CHANNELS, hidden, 1)
        self.encoder = Encoder(
            hidden,
            config.filter_channels,
            config.n_heads,
            config.n_layers,
            config.kernel_size,
            gin=config.gin_channels if config.speaker_conditioned_encoder else 0,
        )
        self.proj = nn.Conv1d(hidden, 2 * config.inter_channels, 1)

    def forward(
        self, piece: PhoneInput, g: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        device = self.emb.weight.device

        def ids(values: list[int]) -> torch.Tensor:
            return torch.tensor([values], dtype=torch.long, device=device)

        bert = self.bert_proj(piece.bert.unsqueeze(0).to(device)).transpose(1, 2)
        ja_bert = self.ja_bert_proj(piece.ja_bert.unsqueeze(0).to(device)).transpose(1, 2)
        x = (
            self.emb(ids(piece.phones))
            + self.tone_emb(ids(piece.tones))
            + self.language_emb(ids(piece.languages))
            + bert
            + ja_bert
        ) * math.sqrt(self.hidden)
        x = x.transpose(1, -1)  # [1, h, t]
        mask = sequence_mask(torch.tensor([len(piece.phones)], device=device), x.size(2))
        x = self.encoder(x * mask, mask, g=g)
        stats = self.proj(x) * mask
        mean, log_scale = stats.split(self.inter, dim=1)
        return x, mean, log_scale, mask


class SynthesizerTrn(nn.Module):
    def __init__(self, config: MeloConfig) -> None:
        super().__init__()
        self.config = config
        inter, hidden, gin = config.inter_channels, config.hidden_channels, config.gin_channels
        self.enc_p = TextEncoder(config)
        self.dec = Generator(config)
        self.enc_q = PosteriorEncoder(config.spec_channels, inter, hidden, gin)
        if config.use_transformer_flow:
            self.flow: nn.Module = TransformerFlow(
                inter,
                hidden,
                config.filter_channels,
                config.n_heads,
                config.n_layers_trans_flow,
                config.n_flow_layer,
                gin,
            )
        else:
            self.flow = Flow(inter, hidden, gin)
        self.sdp = StochasticDurationPredictor(hidden, gin)
        self.dp = DurationPredictor(hidden, gin)
        self.emb_g = nn.Embedding(config.n_speakers, gin)

    def infer(
        self, piece: PhoneInput, speaker: int, scales: Scales, generator: torch.Generator
    ) -> torch.Tensor:
        """Audio [frames × hop] of one piece. Two draws from `generator`, always made
        (even at noise 0), in the reference's order: the SDP's [1, 2, T_x], then the
        prior's [1, inter, T_y] (strided as the expanded mean is)."""
        device = self.emb_g.weight.device
        g = self.emb_g(torch.tensor([speaker], device=device)).unsqueeze(-1)  # [1, gin, 1]
        condition = g if self.config.speaker_conditioned_encoder else None
        x, mean, log_scale, x_mask = self.enc_p(piece, condition)
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
        z_p = mean + prior_noise.to(device) * torch.exp(log_scale) * scales.noise_scale
        z = self.flow(z_p, y_mask, g, reverse=True)
        audio: torch.Tensor = self.dec(z * y_mask, g)
        return audio[0, 0]
