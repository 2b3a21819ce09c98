"""UnifiedVoice v2: the GPT that turns text and a voice into semantic speech tokens.

Sequence layout (reference): [speaker latents (32) + emotion vector, speed_emb(1),
speed_emb(0)] [start_text, text…, stop_text] [start_mel, codes…]. Text and mel
tokens carry their own learned positions, each counted from 0 at its start token;
the GPT-2 stack has none. Hidden states pass the stack's ln_f and then
`final_norm` before a head (two LayerNorms in a row, as published). The "latent"
that S2MEL reads is final_norm's output at the positions that predicted each code.

Generation and the latent use different mel positions, as in the reference: while
generating, the k-th fed-back code (from 0) sits at mel position k + 2 (start_mel at
0, position 1 never used: the reference counts positions from its attention mask,
which includes the start token); the latent comes from a separate teacher-forced
pass over [start_mel, codes…, stop_mel] at positions 0, 1, 2, …

A drawn start_mel token is no speech code (the semantic codec has no row for it; the
reference's S2MEL fails on it with an IndexError): the codes end before it, as at the
stop token. Draws the reference would also make are unchanged by this rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from speechmesh.services.indextts.config import GptConfig
from speechmesh.services.indextts.conformer import ConformerEncoder
from speechmesh.services.indextts.gpt2 import GPT2Stack
from speechmesh.services.indextts.perceiver import PerceiverResampler
from speechmesh.services.indextts.sampling import BeamSearch, SamplingSettings, pick_one

PROMPT_PLACEHOLDER_ID = 1
"""The reference generates from a row of ones (one per prompt embedding) + start_mel;
the repetition penalty therefore also sees token 1."""


class Flag(Protocol):
    """Anything with is_set(): a threading.Event, or several of them."""

    def is_set(self) -> bool: ...


class LearnedPositions(nn.Module):
    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(length, dim)

    def forward(self, start: int, count: int) -> torch.Tensor:
        index = torch.arange(start, start + count, device=self.emb.weight.device)
        return self.emb(index).unsqueeze(0)


@dataclass
class Generated:
    codes: list[int]
    """Speech tokens up to (excluding) the stop token."""
    latent: torch.Tensor | None
    """(1, len(codes), model_dim): the teacher-forced pass's states that predicted the codes
    (None in the pieces a streaming `generate` hands out: they hold codes only)."""
    stopped: bool
    """False when max_mel_tokens cut the segment short."""


class UnifiedVoice(nn.Module):
    def __init__(self, config: GptConfig) -> None:
        super().__init__()
        if config.condition_type != "conformer_perceiver":
            raise ValueError(
                f"gpt.condition_type {config.condition_type!r}: IndexTTS-2 uses conformer_perceiver"
            )
        self.config = config
        dim = config.model_dim
        cond, emo = config.condition_module, config.emo_condition_module
        self.conditioning_encoder = ConformerEncoder(config.semantic_dim, cond)
        self.perceiver_encoder = PerceiverResampler(
            dim,
            cond.output_size,
            config.condition_num_latent,
            cond.attention_heads,
            cond.perceiver_mult,
        )
        self.speed_emb = nn.Embedding(2, dim)
        self.emo_conditioning_encoder = ConformerEncoder(config.semantic_dim, emo)
        self.emo_perceiver_encoder = PerceiverResampler(
            config.semantic_dim, emo.output_size, 1, emo.attention_heads, emo.perceiver_mult
        )
        text_vocab = config.number_text_tokens * config.types + 1
        self.text_embedding = nn.Embedding(text_vocab, dim)
        self.emo_layer = nn.Linear(dim, dim)
        self.emovec_layer = nn.Linear(config.semantic_dim, dim)
        self.mel_embedding = nn.Embedding(config.number_mel_codes, dim)
        self.gpt = GPT2Stack(dim, config.layers, config.heads)
        self.mel_pos_embedding = LearnedPositions(
            config.max_mel_tokens + 2 + config.max_conditioning_inputs, dim
        )
        self.text_pos_embedding = LearnedPositions(config.max_text_tokens + 2, dim)
        self.final_norm = nn.LayerNorm(dim)
        self.text_head = nn.Linear(dim, text_vocab)
        self.mel_head = nn.Linear(dim, config.number_mel_codes)

    # ------------------------------------------------------------------ conditioning

    def speaker_latents(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, 1024) w2v-BERT features → (B, 32, model_dim)."""
        encoded, mask = self.conditioning_encoder(features, lengths)
        return self.perceiver_encoder(encoded, mask.squeeze(1))

    def emotion_vector(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, 1024) w2v-BERT features → (B, model_dim) emotion vector."""
        encoded, mask = self.emo_conditioning_encoder(features, lengths)
        pooled = self.emo_perceiver_encoder(encoded, mask.squeeze(1)).squeeze(1)
        return self.emo_layer(self.emovec_layer(pooled))

    def conditioning(self, speaker: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """The 34 conditioning rows: latents + emotion, then speed_emb(1), speed_emb(0)."""
        batch = speaker.shape[0]
        ids = torch.ones(batch, dtype=torch.long, device=speaker.device)
        half, full = self.speed_emb(ids), self.speed_emb(ids * 0)
        return torch.cat(
            [speaker + emotion.unsqueeze(1), half.unsqueeze(1), full.unsqueeze(1)], dim=1
        )

    def text_embeddings(self, text_ids: list[int]) -> torch.Tensor:
        c = self.config
        ids = [c.start_text_token, *text_ids, c.stop_text_token]
        tokens = torch.tensor([ids], device=self.text_embedding.weight.device)
        return self.text_embedding(tokens) + self.text_pos_embedding(0, len(ids))

    def mel_embeddings(self, codes: torch.Tensor, start: int) -> torch.Tensor:
        return self.mel_embedding(codes) + self.mel_pos_embedding(start, codes.shape[1])

    # ------------------------------------------------------------------------ passes

    @torch.inference_mode()
    def latent(
        self, conditioning: torch.Tensor, text_ids: list[int], codes: list[int]
    ) -> torch.Tensor:
        """The reference's full forward pass: final_norm states that predicted each code."""
        c = self.config
        mel = torch.tensor(
            [[c.start_mel_token, *codes, c.stop_mel_token]], device=conditioning.device
        )
        text = self.text_embeddings(text_ids).to(conditioning.dtype)
        sequence = torch.cat(
            [conditioning, text, self.mel_embeddings(mel, 0).to(conditioning.dtype)], dim=1
        )
        hidden = self.final_norm(self.gpt(sequence))
        return hidden[:, -mel.shape[1] :][:, :-2]

    @torch.inference_mode()
    def generate(
        self,
        conditioning: torch.Tensor,
        text_ids: list[int],
        settings: SamplingSettings,
        generator: torch.Generator | None = None,
        on_codes: int = 0,
        sink: list[Generated] | None = None,
        cancelled: Flag | None = None,
    ) -> Generated:
        """Autoregressive speech tokens with a KV cache, then the latent of the codes.

        With `on_codes` > 0 and one beam, `sink` receives a `Generated` piece (codes only)
        every `on_codes` tokens as they are produced (the last piece holds the rest), and
        `cancelled` is checked between tokens: once set, generation stops where it is.
        """
        c = self.config
        prompt = torch.cat(
            [conditioning, self.text_embeddings(text_ids).to(conditioning.dtype)], dim=1
        )
        beams = max(settings.num_beams, 1)
        limit = min(settings.max_mel_tokens, c.max_mel_tokens)
        cache = self.gpt.new_cache(1, prompt.shape[1] + limit + 1, prompt)
        start = torch.full((1, 1), c.start_mel_token, device=prompt.device)
        first = torch.cat([prompt, self.mel_embeddings(start, 0).to(prompt.dtype)], dim=1)
        hidden = self.final_norm(self.gpt(first, cache))[:, -1:]
        if beams > 1:  # the prompt runs once; every beam starts from its cache
            rows = torch.zeros(beams, dtype=torch.long, device=prompt.device)
            cache.reorder(rows)
            hidden = hidden.expand(beams, -1, -1)
        seen = torch.full((beams, prompt.shape[1] + 1), PROMPT_PLACEHOLDER_ID, device=prompt.device)
        seen[:, -1] = c.start_mel_token
        search = BeamSearch(settings, c.stop_mel_token, prompt.device) if beams > 1 else None
        codes: list[int] = []
        emitted = 0
        stopped = False
        for step in range(limit):
            if cancelled is not None and cancelled.is_set():
                break
            logits = self.mel_head(hidden[:, -1])
            if search is None:
                token = pick_one(logits, seen, settings, generator)
                parents = None
            else:
                parents, token = search.step(logits, seen, generator)
                if parents.numel() == 0:
                    stopped = True
                    break
            if search is None and int(token[0]) in (c.stop_mel_token, c.start_mel_token):
                stopped = True
                break
            if parents is not None:
                cache.reorder(parents)
                seen = seen.index_select(0, parents)
            codes.append(int(token[0]))
            seen = torch.cat([seen, token.view(-1, 1)], dim=1)
            if (
                sink is not None
                and on_codes > 0
                and search is None
                and len(codes) - emitted >= on_codes
            ):
                sink.append(Generated(codes[emitted:], None, stopped=False))
                emitted = len(codes)
            if search is not None and search.is_done:
                stopped = True
                break
            embedded = self.mel_embeddings(token.view(-1, 1), step + 2).to(prompt.dtype)
            hidden = self.final_norm(self.gpt(embedded, cache))
        if search is not None:
            codes = search.best()
            if c.start_mel_token in codes:
                codes = codes[: codes.index(c.start_mel_token)]
        if sink is not None and on_codes > 0 and search is None:
            if len(codes) > emitted or not sink:
                sink.append(Generated(codes[emitted:], None, stopped))
            return Generated(codes, None, stopped)
        return Generated(codes, self.latent(conditioning, text_ids, codes), stopped)
