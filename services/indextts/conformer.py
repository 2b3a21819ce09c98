"""The conformer encoder that reads w2v-BERT features for the speaker and emotion perceivers.

WeNet layout and key names (`embed.conv.0`, `embed.out.0`, `embed.pos_enc.pe`,
`encoders.N.{self_attn, feed_forward, conv_module, norm_*}`, `after_norm`). Quirks
that change the numbers: the "relative" attention adds the position term from the
absolute sinusoid table without the relative shift; the input is scaled by √d
before it; subsampling keeps mask frames 2, 4, 6, ...; the conv module uses
LayerNorm and SiLU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.services.indextts.config import ConformerConfig

MAX_POSITIONS = 5000


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table.unsqueeze(0)


class PositionTable(nn.Module):
    """The sinusoid table the checkpoint stores as `pos_enc.pe` (1, 5000, d)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoid_table(MAX_POSITIONS, dim))
        self.scale = math.sqrt(dim)


class Subsampling2(nn.Module):
    """Conv2d(1→d, 3, stride 2) + ReLU, then Linear over (d · features/2): time halves."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, dim, 3, 2), nn.ReLU())
        self.out = nn.Sequential(nn.Linear(dim * ((in_dim - 1) // 2), dim))
        self.pos_enc = PositionTable(dim)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.conv(x.unsqueeze(1))
        batch, channels, time, freq = x.shape
        x = self.out(x.transpose(1, 2).reshape(batch, time, channels * freq))
        positions = self.pos_enc.pe[:, :time].to(x.dtype)
        return x * self.pos_enc.scale, positions, mask[:, :, 2::2]


class RelPositionAttention(nn.Module):
    def __init__(self, heads: int, dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.d_k = dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.linear_pos = nn.Linear(dim, dim, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.d_k))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        batch, time, _ = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(t.shape[0], -1, self.heads, self.d_k)

        q = split(self.linear_q(x))
        k = split(self.linear_k(x)).transpose(1, 2)
        v = split(self.linear_v(x)).transpose(1, 2)
        p = split(self.linear_pos(positions)).transpose(1, 2)
        content = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        position = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
        scores = (content + position) / math.sqrt(self.d_k)
        blocked = ~mask.unsqueeze(1)  # (B, 1, 1, T)
        scores = scores.masked_fill(blocked, -float("inf"))
        attn = torch.softmax(scores, dim=-1).masked_fill(blocked, 0.0)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(batch, time, -1)
        return self.linear_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.silu(self.w_1(x)))


class ConvModule(nn.Module):
    def __init__(self, dim: int, kernel_size: int = 15) -> None:
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise_conv = nn.Conv1d(
            dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim
        )
        self.norm = nn.LayerNorm(dim)
        self.pointwise_conv2 = nn.Conv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2).masked_fill(~mask, 0.0)
        x = F.glu(self.pointwise_conv1(x), dim=1)
        x = self.depthwise_conv(x)
        x = F.silu(self.norm(x.transpose(1, 2))).transpose(1, 2)
        x = self.pointwise_conv2(x).masked_fill(~mask, 0.0)
        return x.transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(self, config: ConformerConfig) -> None:
        super().__init__()
        dim = config.output_size
        self.self_attn = RelPositionAttention(config.attention_heads, dim)
        self.feed_forward = FeedForward(dim, config.linear_units)
        self.conv_module = ConvModule(dim)
        self.norm_ff = nn.LayerNorm(dim, eps=1e-5)
        self.norm_mha = nn.LayerNorm(dim, eps=1e-5)
        self.norm_conv = nn.LayerNorm(dim, eps=1e-5)
        self.norm_final = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm_mha(x), mask, positions)
        x = x + self.conv_module(self.norm_conv(x), mask)
        x = x + self.feed_forward(self.norm_ff(x))
        return self.norm_final(x)


class ConformerEncoder(nn.Module):
    def __init__(self, in_dim: int, config: ConformerConfig) -> None:
        super().__init__()
        if config.input_layer != "conv2d2":
            raise ValueError(
                f"conformer input_layer {config.input_layer!r}: only conv2d2 is used by IndexTTS-2"
            )
        self.embed = Subsampling2(in_dim, config.output_size)
        self.encoders = nn.ModuleList(ConformerLayer(config) for _ in range(config.num_blocks))
        self.after_norm = nn.LayerNorm(config.output_size, eps=1e-5)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, in) features → (B, T', d) and the (B, 1, T') mask of valid frames."""
        time = features.shape[1]
        mask = (torch.arange(time, device=features.device)[None, :] < lengths[:, None]).unsqueeze(1)
        x, positions, mask = self.embed(features, mask)
        for layer in self.encoders:
            x = layer(x, mask, positions)
        return self.after_norm(x), mask
