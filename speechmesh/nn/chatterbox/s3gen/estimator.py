"""The CFM estimator: a causal 1-D U-Net with transformer blocks (CosyVoice 2's
ConditionalDecoder), velocity of the flow at time t.

Key names are the official `flow.decoder.estimator.*`: `time_mlp.linear_{1,2}`;
`down_blocks.N.{0,1.M,2}`, `mid_blocks.N.{0,1.M}`, `up_blocks.N.{0,1.M,2}` (a causal
resnet block `block{1,2}.block.{0,2}` conv + layer norm, `mlp.1`, `res_conv`;
transformer blocks `norm1`, `attn1.to_{q,k,v}`, `attn1.to_out.0`, `norm3`,
`ff.net.0.proj`, `ff.net.2`; a causal k-3 convolution or a stride-2 down/up sampler);
`final_block.block.{0,2}`, `final_proj`; turbo adds `time_embed_mixer` (no bias).

What changes numbers: the time embedding is sinusoidal at scale 1000 (half sin, half
cos, log(10000)/(half − 1)) through linear–SiLU–linear; turbo embeds t and r alike
and mixes the pair; inputs are stacked [x, mu, speaker, prompt mel] on channels;
causal convolutions pad k − 1 zeros on the left; layer norms are over channels;
attention is full (no chunking) with padded keys biased by −1e10; the feed-forward
is exact GELU ×4. Everything multiplies by the mask before a convolution, so padded
frames never reach a row's real frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.nn.chatterbox.s3gen.config import EstimatorConfig


def timestep_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1)))
    angles = scale * t[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class CausalConv1d(nn.Conv1d):
    def __init__(self, channels_in: int, channels_out: int, kernel: int) -> None:
        super().__init__(channels_in, channels_out, kernel)
        self.left = kernel - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class Resample(nn.Module):
    """The U-Net's stride-2 down (k 3) or up (transposed k 4) sampler, kept under `.conv`."""

    def __init__(self, width: int, up: bool) -> None:
        super().__init__()
        self.conv = (
            nn.ConvTranspose1d(width, width, 4, 2, 1) if up else nn.Conv1d(width, width, 3, 2, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ChannelNorm(nn.LayerNorm):
    """Layer norm over channels of a (B, C, T) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class CausalBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        # Indices 1 and 3 are the reference's parameter-free transposes.
        self.block = nn.ModuleDict({"0": CausalConv1d(dim, dim_out, 3), "2": ChannelNorm(dim_out)})

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.mish(self.block["2"](self.block["0"](x * mask))) * mask


class CausalResnetBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, time_dim: int) -> None:
        super().__init__()
        self.mlp = nn.ModuleDict({"1": nn.Linear(time_dim, dim_out)})  # "0" is a Mish
        self.block1 = CausalBlock(dim, dim_out)
        self.block2 = CausalBlock(dim_out, dim_out)
        self.res_conv = nn.Conv1d(dim, dim_out, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.block1(x, mask) + self.mlp["1"](F.mish(t))[..., None]
        return self.block2(h, mask) + self.res_conv(x * mask)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (
            proj(x).view(b, t, self.heads, -1).transpose(1, 2)
            for proj in (self.to_q, self.to_k, self.to_v)
        )
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.to_out[0](mixed.transpose(1, 2).reshape(b, t, -1))


class GELUProjection(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, head_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = nn.Module()
        self.ff.net = nn.ModuleDict(
            {"0": GELUProjection(dim, 4 * dim), "2": nn.Linear(4 * dim, dim)}
        )

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x), bias)
        net = self.ff.net
        return x + net["2"](net["0"](self.norm3(x)))


def _transformers(dim: int, config: EstimatorConfig) -> nn.ModuleList:
    return nn.ModuleList(
        TransformerBlock(dim, config.num_heads, config.attention_head_dim)
        for _ in range(config.n_blocks)
    )


def _attend(blocks: nn.ModuleList, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C, T) through transformer blocks; keys past the mask biased by −1e10."""
    bias = ((1.0 - mask.to(x.dtype)) * -1.0e10)[:, None, None]  # (B, 1, 1, T)
    x = x.transpose(1, 2)
    for block in blocks:
        x = block(x, bias)
    return x.transpose(1, 2)


class ConditionalDecoder(nn.Module):
    def __init__(self, config: EstimatorConfig, meanflow: bool = False) -> None:
        super().__init__()
        self.config = config
        channels = tuple(config.channels)
        time_dim = channels[0] * 4
        self.time_mlp = nn.Module()
        self.time_mlp.linear_1 = nn.Linear(config.in_channels, time_dim)
        self.time_mlp.linear_2 = nn.Linear(time_dim, time_dim)
        self.down_blocks = nn.ModuleList()
        out = config.in_channels
        for i, width in enumerate(channels):
            last = i == len(channels) - 1
            sampler: nn.Module = (
                CausalConv1d(width, width, 3) if last else Resample(width, up=False)
            )
            self.down_blocks.append(
                nn.ModuleList(
                    [CausalResnetBlock(out, width, time_dim), _transformers(width, config), sampler]
                )
            )
            out = width
        self.mid_blocks = nn.ModuleList(
            nn.ModuleList([CausalResnetBlock(out, out, time_dim), _transformers(out, config)])
            for _ in range(config.num_mid_blocks)
        )
        ups = (*channels[::-1], channels[0])
        self.up_blocks = nn.ModuleList()
        for i in range(len(ups) - 1):
            last = i == len(ups) - 2
            width = ups[i + 1]
            sampler = CausalConv1d(width, width, 3) if last else Resample(width, up=True)
            self.up_blocks.append(
                nn.ModuleList(
                    [
                        CausalResnetBlock(2 * ups[i], width, time_dim),
                        _transformers(width, config),
                        sampler,
                    ]
                )
            )
        self.final_block = CausalBlock(ups[-1], ups[-1])
        self.final_proj = nn.Conv1d(ups[-1], config.out_channels, 1)
        self.time_embed_mixer = nn.Linear(2 * time_dim, time_dim, bias=False) if meanflow else None

    def _time(self, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t, self.config.in_channels).to(t.dtype)
        return self.time_mlp.linear_2(F.silu(self.time_mlp.linear_1(emb)))

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        mu: torch.Tensor,
        t: torch.Tensor,
        spks: torch.Tensor,
        cond: torch.Tensor,
        r: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x, mu, cond (B, 80, T); mask (B, 1, T); t, r (B,); spks (B, 80) → (B, 80, T)."""
        temb = self._time(t)
        if self.time_embed_mixer is not None:
            assert r is not None, "a meanflow estimator needs the end time r"
            temb = self.time_embed_mixer(torch.cat([temb, self._time(r)], dim=1))
        x = torch.cat([x, mu, spks[..., None].expand(-1, -1, x.shape[-1]), cond], dim=1)
        skips, masks = [], [mask]
        for resnet, blocks, down in self.down_blocks:
            m = masks[-1]
            x = _attend(blocks, resnet(x, m, temb), m[:, 0])
            skips.append(x)
            x = down(x * m)
            masks.append(m[:, :, ::2])
        masks = masks[:-1]
        m = masks[-1]
        for resnet, blocks in self.mid_blocks:
            x = _attend(blocks, resnet(x, m, temb), m[:, 0])
        for resnet, blocks, up in self.up_blocks:
            m = masks.pop()
            skip = skips.pop()
            x = torch.cat([x[:, :, : skip.shape[-1]], skip], dim=1)
            x = up(_attend(blocks, resnet(x, m, temb), m[:, 0]) * m)
        x = self.final_block(x, m)
        return self.final_proj(x * m) * mask
