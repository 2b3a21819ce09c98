"""VITS's text encoder (`enc_p` upstream): phoneme ids → hidden states and the prior's
mean and log scale per phoneme.

A transformer of self-attention with relative positions (a window of 4 either side,
one table shared by the heads, for keys and values), each sub-layer followed by a
residual and a channel layer norm; feed-forward blocks are two same-padded
convolutions with a ReLU between. Embeddings are scaled by sqrt(hidden). Dropout is a
training matter and absent.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.nn.vits.flow import sequence_mask

WINDOW = 4
MASKED_SCORE = -1e4


class LayerNorm(nn.Module):
    """Layer norm over the channels of [batch, channels, time] (`gamma`, `beta`)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), self.gamma.shape, self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class RelativeAttention(nn.Module):
    """Multi-head self-attention with learned relative-position keys and values."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads, self.k_channels = heads, channels // heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * WINDOW + 1, self.k_channels))
        self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * WINDOW + 1, self.k_channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:  # [b, d, t] → [b, h, t, d_k]
            return t.view(batch, self.heads, self.k_channels, length).transpose(2, 3)

        query = heads(self.conv_q(x)) / math.sqrt(self.k_channels)
        key, value = heads(self.conv_k(x)), heads(self.conv_v(x))
        scores = torch.matmul(query, key.transpose(-2, -1))
        relative_keys = _relative_window(self.emb_rel_k, length)
        relative_logits = torch.matmul(query, relative_keys.unsqueeze(0).transpose(-2, -1))
        scores = scores + _relative_to_absolute(relative_logits)
        scores = scores.masked_fill(mask == 0, MASKED_SCORE)
        weights = F.softmax(scores, dim=-1)
        output = torch.matmul(weights, value)
        relative_values = _relative_window(self.emb_rel_v, length)
        output = output + torch.matmul(_absolute_to_relative(weights), relative_values.unsqueeze(0))
        output = output.transpose(2, 3).contiguous().view(batch, channels, length)
        out: torch.Tensor = self.conv_o(output)
        return out


def _relative_window(table: torch.Tensor, length: int) -> torch.Tensor:
    """The 2·length − 1 relative embeddings a sequence of `length` uses (zeros beyond the
    window)."""
    pad = max(length - (WINDOW + 1), 0)
    start = max((WINDOW + 1) - length, 0)
    padded = F.pad(table, (0, 0, pad, pad)) if pad else table
    return padded[:, start : start + 2 * length - 1]


def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
    """[b, h, l, 2l − 1] relative logits → [b, h, l, l] by position."""
    batch, heads, length, _ = x.shape
    x = F.pad(x, (0, 1)).view(batch, heads, 2 * length * length)
    x = F.pad(x, (0, length - 1))
    return x.view(batch, heads, length + 1, 2 * length - 1)[:, :, :length, length - 1 :]


def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
    """[b, h, l, l] weights by position → [b, h, l, 2l − 1] by relative offset."""
    batch, heads, length, _ = x.shape
    x = F.pad(x, (0, length - 1)).view(batch, heads, length * length + length * (length - 1))
    x = F.pad(x, (length, 0))
    return x.view(batch, heads, length, 2 * length)[:, :, :, 1:]


class FeedForward(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, ((self.kernel - 1) // 2, self.kernel // 2)) if self.kernel > 1 else x

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._pad(x * mask)))
        return self.conv_2(self._pad(x * mask)) * mask


class Encoder(nn.Module):
    """The transformer (`encoder` upstream). With `gin` > 0 (VITS2, as MeloTTS has it) a
    speaker condition, projected by `spk_emb_linear`, is added to the states entering
    layer `cond_layer` (upstream's cond_layer_idx, 2 unless a config says otherwise)."""

    def __init__(
        self,
        hidden: int,
        filter_channels: int,
        heads: int,
        layers: int,
        kernel: int,
        gin: int = 0,
        cond_layer: int = 2,
    ) -> None:
        super().__init__()
        self.cond_layer = cond_layer if gin else layers
        if gin:
            if not 0 <= cond_layer < layers:
                raise ValueError(f"cond_layer {cond_layer} is not below the {layers} layers")
            self.spk_emb_linear = nn.Linear(gin, hidden)
        self.attn_layers = nn.ModuleList(RelativeAttention(hidden, heads) for _ in range(layers))
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden) for _ in range(layers))
        self.ffn_layers = nn.ModuleList(
            FeedForward(hidden, filter_channels, kernel) for _ in range(layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden) for _ in range(layers))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`g` [b, gin, 1]: the speaker condition (only where the encoder has one)."""
        attention_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for index, (attention, norm_1, ffn, norm_2) in enumerate(
            zip(
                self.attn_layers,
                self.norm_layers_1,
                self.ffn_layers,
                self.norm_layers_2,
                strict=True,
            )
        ):
            if index == self.cond_layer and g is not None:
                x = (x + self.spk_emb_linear(g.transpose(1, 2)).transpose(1, 2)) * mask
            x = norm_1(x + attention(x, attention_mask))
            x = norm_2(x + ffn(x, mask))
        return x * mask


class TextEncoder(nn.Module):
    """Phoneme ids → (hidden states, prior mean, prior log scale, mask)."""

    def __init__(
        self,
        vocabulary: int,
        inter: int,
        hidden: int,
        filter_channels: int,
        heads: int,
        layers: int,
        kernel: int,
    ) -> None:
        super().__init__()
        self.inter, self.hidden = inter, hidden
        self.emb = nn.Embedding(vocabulary, hidden)
        self.encoder = Encoder(hidden, filter_channels, heads, layers, kernel)
        self.proj = nn.Conv1d(hidden, 2 * inter, 1)

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = (self.emb(ids) * math.sqrt(self.hidden)).transpose(1, -1)  # [b, h, t]
        mask = sequence_mask(lengths, x.size(2)).to(x.dtype)
        x = self.encoder(x * mask, mask)
        stats = self.proj(x) * mask
        mean, log_scale = stats.split(self.inter, dim=1)
        return x, mean, log_scale, mask
