"""S3Gen's token-to-mel flow (CausalMaskedDiffWithXvec + CausalConditionalCFM): prompt and
new speech tokens, the prompt's mel and an x-vector → the new tokens' 80-bin mel.

Key names are the official `flow.*`: `input_embedding`, `spk_embed_affine_layer`,
`encoder.*`, `encoder_proj`, `decoder.estimator.*`.

What changes numbers (as the reference): the x-vector is L2-normalised, then projected
to 80; prompt tokens go before the new ones and through the encoder together; the
prompt mel fills the condition for the first len(prompt mel) frames and those frames
are cut from the output (so the output has 2·(prompt + new tokens) − len(prompt mel)
frames; a row's `hold` last tokens are encoded but their frames cut, as the reference's
finalize=False); the ODE runs from t = 0 to 1 with Euler steps on a cosine schedule
(t = 1 − cos(π/2 · k/n)), classifier-free guidance 0.7 against a pass with mu,
speaker and condition zeroed: v = 1.7·v_cond − 0.7·v_uncond. Meanflow (turbo): a
linear schedule, the estimator also gets the step's end r, no guidance.

Rows of a batch are independent: each row brings its own noise, prompt and speaker,
and is padded at its end (masked everywhere), so a row gives the same mel alone or
beside others.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.nn.chatterbox.s3gen.config import MEL_BINS, TOKEN_MEL_RATIO, S3GenConfig
from speechmesh.nn.chatterbox.s3gen.encoder import UpsampleConformerEncoder
from speechmesh.nn.chatterbox.s3gen.estimator import ConditionalDecoder


@dataclass(frozen=True)
class FlowRow:
    """One row of a flow batch."""

    tokens: torch.Tensor  # (N,) new speech tokens, int64
    prompt_tokens: torch.Tensor  # (P,) the reference's speech tokens
    prompt_mel: torch.Tensor  # (F, 80) the reference's 24 kHz mel
    embedding: torch.Tensor  # (192,) the reference's CAM++ x-vector
    noise: torch.Tensor  # (80, 2·(P + N − hold)) the ODE's starting point
    hold: int = 0
    """Last tokens that only serve as the encoder's lookahead: their frames are cut
    before the decoder (the reference's finalize=False, for a sentence still coming)."""

    @property
    def frames(self) -> int:
        return TOKEN_MEL_RATIO * (len(self.prompt_tokens) + len(self.tokens) - self.hold)


def time_span(steps: int, meanflow: bool, device: torch.device) -> torch.Tensor:
    span = torch.linspace(0, 1, steps + 1, device=device)
    return span if meanflow else 1 - torch.cos(span * 0.5 * math.pi)


class CFM(nn.Module):
    """Holds the estimator under `decoder.estimator` (the reference's nesting)."""

    def __init__(self, config: S3GenConfig) -> None:
        super().__init__()
        self.estimator = ConditionalDecoder(config.estimator, meanflow=config.meanflow)
        self.meanflow = config.meanflow
        self.cfg_rate = config.cfg_rate

    def solve(self, z, mu, mask, spks, cond, steps: int) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """Euler steps from noise z (B, 80, T) to a mel."""
        span = time_span(steps, self.meanflow, z.device)
        x, batch = z, z.shape[0]
        for t, r in itertools.pairwise(span):
            t1, r1 = t[None], r[None]
            if self.meanflow:
                v = self.estimator(x, mask, mu, t1.expand(batch), spks, cond, r1.expand(batch))
            else:
                both = self.estimator(
                    torch.cat([x, x]),
                    torch.cat([mask, mask]),
                    torch.cat([mu, torch.zeros_like(mu)]),
                    t1.expand(2 * batch),
                    torch.cat([spks, torch.zeros_like(spks)]),
                    torch.cat([cond, torch.zeros_like(cond)]),
                )
                v_cond, v_free = both[:batch], both[batch:]
                v = (1.0 + self.cfg_rate) * v_cond - self.cfg_rate * v_free
            x = x + (r1 - t1) * v
        return x


class Token2Mel(nn.Module):
    def __init__(self, config: S3GenConfig) -> None:
        super().__init__()
        self.config = config
        size = config.encoder.input_size
        self.input_embedding = nn.Embedding(config.vocab_size, size)
        self.spk_embed_affine_layer = nn.Linear(config.campplus.embedding_size, MEL_BINS)
        self.encoder = UpsampleConformerEncoder(config.encoder)
        self.encoder_proj = nn.Linear(config.encoder.size, MEL_BINS)
        self.decoder = CFM(config)

    def encode(self, rows: Sequence[FlowRow]) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's projected output mu (B, 80, T) and each row's frame count."""
        device = self.input_embedding.weight.device
        joined = [torch.cat([r.prompt_tokens.to(device), r.tokens.to(device)]).long() for r in rows]
        lengths = torch.tensor([len(j) for j in joined], device=device)
        tokens = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long, device=device)
        for i, row in enumerate(joined):
            tokens[i, : len(row)] = row
        keep = torch.arange(tokens.shape[1], device=device)[None] < lengths[:, None]
        h, frames = self.encoder(self.input_embedding(tokens) * keep[..., None], lengths)
        return self.encoder_proj(h).transpose(1, 2), frames

    def forward(self, rows: Sequence[FlowRow], steps: int) -> list[torch.Tensor]:
        """Each row's new mel, (80, frames − len(prompt mel))."""
        mu, frames = self.encode(rows)
        holds = [TOKEN_MEL_RATIO * r.hold for r in rows]
        frames = frames - torch.tensor(holds, device=frames.device, dtype=frames.dtype)
        _batch, _, width = mu.shape
        device = mu.device
        mask = (torch.arange(width, device=device)[None] < frames[:, None]).to(mu.dtype)[:, None]
        cond = torch.zeros_like(mu)
        z = torch.zeros_like(mu)
        for i, row in enumerate(rows):
            prompt = row.prompt_mel.to(device)
            cond[i, :, : prompt.shape[0]] = prompt.T
            if row.noise.shape != (MEL_BINS, int(frames[i])):
                raise ValueError(
                    f"row {i} noise is {tuple(row.noise.shape)}, wants (80, {int(frames[i])})"
                )
            z[i, :, : int(frames[i])] = row.noise.to(device)
        spks = torch.stack([r.embedding.to(device).reshape(-1) for r in rows])
        spks = self.spk_embed_affine_layer(F.normalize(spks, dim=1))
        mel = self.decoder.solve(z, mu, mask, spks, cond, steps)
        return [mel[i, :, r.prompt_mel.shape[0] : int(frames[i])] for i, r in enumerate(rows)]
