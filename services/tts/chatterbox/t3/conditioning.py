"""T3's conditioning prefix: the speaker embedding projected to one position, the
prompt speech tokens (resampled to 32 positions by a perceiver, standard and
multilingual), and the emotion exaggeration projected to one position."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.services.tts.chatterbox.t3.config import T3Config

PERCEIVER_QUERIES = 32
PERCEIVER_HEADS = 4


@dataclass(frozen=True)
class T3Conditionals:
    """One voice's conditioning for T3; a request's own, never stored on the model."""

    speaker: torch.Tensor
    """[speaker_size] voice-encoder embedding."""
    prompt_tokens: torch.Tensor
    """[n] S3 speech tokens of the reference's first seconds (n ≤ config.prompt_tokens)."""
    exaggeration: float = 0.5


class AttentionBlock(nn.Module):
    """Pre-norm multi-head attention with a residual (AttentionBlock2 of the reference):
    one LayerNorm for queries and keys alike."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.proj_out = nn.Linear(channels, channels)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, channels = x.shape
        return x.view(batch, length, self.heads, channels // self.heads).transpose(1, 2)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        q_in, k_in = self.norm(queries), self.norm(keys)
        q, k, v = (
            self._split(self.to_q(q_in)),
            self._split(self.to_k(k_in)),
            self._split(self.to_v(k_in)),
        )
        out = F.scaled_dot_product_attention(q, k, v)
        batch, _, length, _ = out.shape
        return queries + self.proj_out(out.transpose(1, 2).reshape(batch, length, -1))


class Perceiver(nn.Module):
    """32 learned queries attend to the prompt, then to themselves, with one block."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pre_attention_query = nn.Parameter(torch.zeros(1, PERCEIVER_QUERIES, channels))
        self.attn = AttentionBlock(channels, PERCEIVER_HEADS)

    def forward(self, prompt: torch.Tensor) -> torch.Tensor:
        queries = self.pre_attention_query.expand(prompt.shape[0], -1, -1)
        resampled = self.attn(queries, prompt)
        return self.attn(resampled, resampled)


class T3CondEnc(nn.Module):
    """Module names as the official `cond_enc.*` keys."""

    def __init__(self, config: T3Config) -> None:
        super().__init__()
        self.spkr_enc = nn.Linear(config.speaker_size, config.hidden)
        self.emotion_adv_fc = nn.Linear(1, config.hidden, bias=False) if config.emotion else None
        self.perceiver = Perceiver(config.hidden) if config.perceiver else None

    def forward(
        self, speaker: torch.Tensor, prompt: torch.Tensor, exaggeration: torch.Tensor
    ) -> torch.Tensor:
        """speaker [B, 256], prompt [B, n, D] (embedded prompt tokens), exaggeration [B]
        → [B, positions, D]."""
        parts = [self.spkr_enc(speaker)[:, None]]
        parts.append(self.perceiver(prompt) if self.perceiver is not None else prompt)
        if self.emotion_adv_fc is not None:
            parts.append(self.emotion_adv_fc(exaggeration.view(-1, 1, 1)))
        return torch.cat(parts, dim=1)
