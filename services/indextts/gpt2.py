"""A GPT-2 decoder stack with the published key names and a preallocated KV cache.

Weights are laid out as transformers' GPT2Model stores them (`h.N.ln_1`,
`h.N.attn.c_attn`, `h.N.attn.c_proj`, `h.N.ln_2`, `h.N.mlp.c_fc`, `h.N.mlp.c_proj`,
`ln_f`), Conv1D weights as (in, out). No token or position embeddings: IndexTTS
feeds embeddings with its own learned positions (the reference replaces `wpe` by
zeros and deletes `wte`). Activation gelu_new (tanh), LayerNorm eps 1e-5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv1D(nn.Module):
    """transformers' Conv1D: a linear layer whose weight is stored (in, out)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(
            *x.shape[:-1], self.weight.shape[1]
        )


class KVCache:
    """Keys and values of every layer for `batch` rows, up to `capacity` positions."""

    def __init__(
        self, layers: int, batch: int, heads: int, capacity: int, head_dim: int, like: torch.Tensor
    ):
        shape = (batch, heads, capacity, head_dim)
        self.keys = [like.new_zeros(shape) for _ in range(layers)]
        self.values = [like.new_zeros(shape) for _ in range(layers)]
        self.length = 0
        self.capacity = capacity

    def reorder(self, rows: torch.Tensor) -> None:
        """Keeps the cache of the given rows (beam search picks parents each step)."""
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = Conv1D(dim, 3 * dim)
        self.c_proj = Conv1D(dim, dim)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        batch, time, dim = x.shape
        q, k, v = self.c_attn(x).split(dim, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, time, self.heads, -1).transpose(1, 2)

        q, k, v = heads(q), heads(k), heads(v)
        if cache is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            start = cache.length
            end = start + time
            cache.keys[layer][:, :, start:end] = k
            cache.values[layer][:, :, start:end] = v
            keys = cache.keys[layer][:, :, :end]
            values = cache.values[layer][:, :, :end]
            if time == 1:
                out = F.scaled_dot_product_attention(q, keys, values)
            else:
                mask = torch.ones(time, end, dtype=torch.bool, device=x.device).tril(start)
                out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.c_proj(out.transpose(1, 2).reshape(batch, time, dim))


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """transformers' gelu_new written out as it computes it: torch's fused tanh GELU rounds
    differently (~6e-7 after two layers) and the codes drawn from the logits follow it."""
    return (
        0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    )


class MLP(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.c_fc = Conv1D(dim, 4 * dim)
        self.c_proj = Conv1D(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = MLP(dim)

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT2Stack(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.h = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim, eps=1e-5)

    def new_cache(self, batch: int, capacity: int, like: torch.Tensor) -> KVCache:
        dim = self.ln_f.normalized_shape[0]
        return KVCache(len(self.h), batch, self.heads, capacity, dim // self.heads, like)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Causal pass over `x` (B, T, d); with a cache, `x` continues what it holds."""
        if cache is not None and cache.length + x.shape[1] > cache.capacity:
            raise ValueError(f"KV cache full: {cache.length} + {x.shape[1]} > {cache.capacity}")
        for index, block in enumerate(self.h):
            x = block(x, cache, index)
        if cache is not None:
            cache.length += x.shape[1]
        return self.ln_f(x)
