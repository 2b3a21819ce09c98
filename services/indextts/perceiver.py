"""The perceiver resampler: a fixed number of learned latents attend to a sequence.

Key names follow the published checkpoint (`proj_context`, `latents`,
`layers.N.0.{to_q,to_kv,to_out}`, `layers.N.1.{0,2}` for the GEGLU feed-forward,
`norm.gamma`). The latents attend to themselves and the context together; the
final norm is an RMS norm written as L2-normalise × √d × γ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


def feed_forward(dim: int, mult: float) -> nn.Sequential:
    inner = int(dim * mult * 2 / 3)
    return nn.Sequential(nn.Linear(dim, inner * 2), GEGLU(), nn.Linear(inner, dim))


class LatentAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int = 64) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(
        self, latents: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        both = torch.cat([latents, context], dim=1)
        q = self.to_q(latents)
        k, v = self.to_kv(both).chunk(2, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)

        q, k, v = heads(q), heads(k), heads(v)
        scores = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, None, :], -torch.finfo(scores.dtype).max)
        out = torch.matmul(scores.softmax(dim=-1), v)
        return self.to_out(out.transpose(1, 2).reshape(latents.shape[0], latents.shape[1], -1))


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class PerceiverResampler(nn.Module):
    def __init__(
        self,
        dim: int,
        dim_context: int,
        num_latents: int,
        heads: int,
        ff_mult: float,
        depth: int = 2,
    ) -> None:
        super().__init__()
        self.proj_context = nn.Linear(dim_context, dim) if dim_context != dim else nn.Identity()
        self.latents = nn.Parameter(torch.zeros(num_latents, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([LatentAttention(dim, heads), feed_forward(dim, ff_mult)])
            for _ in range(depth)
        )
        self.norm = RMSNorm(dim)

    def forward(
        self, context: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, dim_context) → (B, num_latents, dim); the mask covers the context frames."""
        context = self.proj_context(context)
        latents = self.latents.unsqueeze(0).expand(context.shape[0], -1, -1)
        mask = None
        if context_mask is not None:
            own = torch.ones(
                context.shape[0], latents.shape[1], dtype=torch.bool, device=context.device
            )
            mask = torch.cat([own, context_mask], dim=1)
        for attention, ff in self.layers:  # type: ignore[misc]
            latents = attention(latents, context, mask) + latents
            latents = ff(latents) + latents
        return self.norm(latents)
