"""S3Gen's upsampling conformer encoder: 25 Hz token embeddings → 50 Hz hidden frames.

Key names are the official `flow.encoder.*`: `embed.out.{0,1}` (linear + layer norm),
`pre_lookahead_layer.conv{1,2}`, `encoders.N` / `up_encoders.N` (espnet rel-pos
self-attention `self_attn.linear_{q,k,v,out,pos}`, `pos_bias_{u,v}`; SiLU FFN
`feed_forward.w_{1,2}`; pre-norms `norm_mha`, `norm_ff` with eps 1e-12),
`up_layer.conv`, `up_embed.out.*`, `after_norm`.

What changes numbers: inputs are scaled by √size after the embedding's layer norm; the
relative positions are espnet's (sin/cos of ±distance, 2T − 1 of them, rel-shifted);
the pre-lookahead convolution sees the next 3 tokens (zeros past the end), then a
causal k-3 convolution, added back; the upsampling is nearest ×2, 4 zeros on the left
and a k-5 convolution. Positions past a row's length are zeroed before the lookahead
so that a row's output never depends on the rest of its batch (the reference runs one
row at a time, where those positions are the convolution's own zero padding).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.nn.chatterbox.s3gen.config import EncoderConfig


def relative_positions(length: int, size: int, device: torch.device) -> torch.Tensor:
    """(1, 2·length − 1, size): positions length−1 … −(length−1), espnet's layout."""
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    div = torch.exp(
        torch.arange(0, size, 2, dtype=torch.float32, device=device) * -(math.log(10000.0) / size)
    )
    positive = torch.zeros(length, size, device=device)
    negative = torch.zeros(length, size, device=device)
    positive[:, 0::2] = torch.sin(position * div)
    positive[:, 1::2] = torch.cos(position * div)
    negative[:, 0::2] = torch.sin(-1 * position * div)
    negative[:, 1::2] = torch.cos(-1 * position * div)
    return torch.cat([torch.flip(positive, [0]), negative[1:]], dim=0)[None]


class LinearEmbed(nn.Module):
    def __init__(self, idim: int, odim: int) -> None:
        super().__init__()
        self.out = nn.Sequential(nn.Linear(idim, odim), nn.LayerNorm(odim, eps=1e-5))
        self.scale = math.sqrt(odim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.out(x) * self.scale
        return x, relative_positions(x.shape[1], x.shape[2], x.device)


class RelPositionAttention(nn.Module):
    def __init__(self, heads: int, size: int) -> None:
        super().__init__()
        self.h, self.d_k = heads, size // heads
        self.linear_q = nn.Linear(size, size)
        self.linear_k = nn.Linear(size, size)
        self.linear_v = nn.Linear(size, size)
        self.linear_out = nn.Linear(size, size)
        self.linear_pos = nn.Linear(size, size, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.d_k))

    @staticmethod
    def _rel_shift(x: torch.Tensor) -> torch.Tensor:
        b, h, t1, t2 = x.shape
        padded = torch.cat([x.new_zeros(b, h, t1, 1), x], dim=-1).view(b, h, t2 + 1, t1)
        return padded[:, :, 1:].view_as(x)[:, :, :, : t2 // 2 + 1]

    def forward(self, x: torch.Tensor, keep: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.linear_q(x).view(b, t, self.h, self.d_k)
        k = self.linear_k(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos).view(1, -1, self.h, self.d_k).transpose(1, 2)
        ac = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        bd = self._rel_shift(
            torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
        )
        scores = (ac + bd) / math.sqrt(self.d_k)
        masked = ~keep[:, None, None, :]
        attn = torch.softmax(scores.masked_fill(masked, -float("inf")), dim=-1).masked_fill(
            masked, 0.0
        )
        mixed = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, self.h * self.d_k)
        return self.linear_out(mixed)


class FeedForward(nn.Module):
    def __init__(self, size: int, hidden: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(size, hidden)
        self.w_2 = nn.Linear(hidden, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.silu(self.w_1(x)))


class ConformerLayer(nn.Module):
    """Pre-norm self-attention + FFN (no macaron, no convolution module in S3Gen)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.self_attn = RelPositionAttention(config.heads, config.size)
        self.feed_forward = FeedForward(config.size, config.linear_units)
        self.norm_ff = nn.LayerNorm(config.size, eps=1e-12)
        self.norm_mha = nn.LayerNorm(config.size, eps=1e-12)

    def forward(self, x: torch.Tensor, keep: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm_mha(x), keep, pos)
        return x + self.feed_forward(self.norm_ff(x))


class PreLookahead(nn.Module):
    def __init__(self, channels: int, lookahead: int) -> None:
        super().__init__()
        self.lookahead = lookahead
        self.conv1 = nn.Conv1d(channels, channels, lookahead + 1)
        self.conv2 = nn.Conv1d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pad(x.transpose(1, 2), (0, self.lookahead))
        y = F.pad(F.leaky_relu(self.conv1(y)), (2, 0))
        return self.conv2(y).transpose(1, 2) + x


class Upsample(nn.Module):
    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(channels, channels, stride * 2 + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) → (B, C, stride·T)."""
        y = F.interpolate(x, scale_factor=float(self.stride), mode="nearest")
        return self.conv(F.pad(y, (self.stride * 2, 0)))


def _keep(lengths: torch.Tensor, size: int) -> torch.Tensor:
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


class UpsampleConformerEncoder(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = LinearEmbed(config.input_size, config.size)
        self.pre_lookahead_layer = PreLookahead(config.size, config.pre_lookahead)
        self.encoders = nn.ModuleList(ConformerLayer(config) for _ in range(config.blocks))
        self.up_layer = Upsample(config.size, config.up_stride)
        self.up_embed = LinearEmbed(config.input_size, config.size)
        self.up_encoders = nn.ModuleList(ConformerLayer(config) for _ in range(config.up_blocks))
        self.after_norm = nn.LayerNorm(config.size, eps=1e-5)

    def forward(self, xs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """xs (B, T, input_size), lengths (B,) → (B, stride·T, size), lengths × stride."""
        keep = _keep(lengths, xs.shape[1])
        xs, pos = self.embed(xs)
        xs = self.pre_lookahead_layer(xs * keep[..., None])
        for layer in self.encoders:
            xs = layer(xs, keep, pos)
        xs = self.up_layer(xs.transpose(1, 2)).transpose(1, 2)
        lengths = lengths * self.config.up_stride
        keep = _keep(lengths, xs.shape[1])
        xs, pos = self.up_embed(xs)
        for layer in self.up_encoders:
            xs = layer(xs, keep, pos)
        return self.after_norm(xs), lengths
