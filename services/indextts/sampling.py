"""Choosing speech tokens: the reference's logits processing, sampling and beam search.

Order and semantics follow transformers' generate() as the reference calls it:
- one beam: raw logits → repetition penalty → temperature → top-k → top-p →
  softmax → one draw (or argmax without sampling);
- beams: log-softmax → the same processors (top-k/top-p keep ≥ 2) → + beam score →
  softmax over beams × vocabulary → 2·beams draws without replacement (or top
  2·beams without sampling) → best first; a draw of the stop token closes a
  hypothesis scored sum(log p) / length^length_penalty.
The repetition penalty sees the whole input row, the placeholder prompt ids (1) and
the start token included, as the reference's does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class SamplingSettings:
    do_sample: bool = True
    temperature: float = 0.8
    top_p: float = 0.8
    top_k: int = 30
    num_beams: int = 3
    repetition_penalty: float = 10.0
    length_penalty: float = 0.0
    max_mel_tokens: int = 1500


def process(
    scores: torch.Tensor, seen: torch.Tensor, settings: SamplingSettings, min_keep: int
) -> torch.Tensor:
    """Applies repetition penalty and, when sampling, temperature, top-k and top-p."""
    if settings.repetition_penalty != 1.0:
        picked = torch.gather(scores, 1, seen)
        picked = torch.where(
            picked < 0, picked * settings.repetition_penalty, picked / settings.repetition_penalty
        )
        scores = scores.scatter(1, seen, picked)
    if not settings.do_sample:
        return scores
    if settings.temperature != 1.0:
        scores = scores / settings.temperature
    if settings.top_k > 0:
        k = min(max(settings.top_k, min_keep), scores.shape[-1])
        threshold = torch.topk(scores, k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < threshold, -float("inf"))
    if settings.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=False, dim=-1)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative <= (1 - settings.top_p)
        drop[..., -min_keep:] = False
        scores = scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    return scores


def pick_one(
    logits: torch.Tensor,
    seen: torch.Tensor,
    settings: SamplingSettings,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The next token of each row without beams: (B, V) logits → (B,) tokens."""
    scores = process(logits.float(), seen, settings, min_keep=1)
    if settings.do_sample:
        return torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
    return scores.argmax(dim=-1)


@dataclass
class Hypotheses:
    """The finished sequences of one input row, best `beams` kept."""

    beams: int
    length_penalty: float
    done: list[tuple[float, list[int], int]] = field(default_factory=list)
    """(score, tokens, parent step index) — tokens exclude the stop token."""

    def add(self, tokens: list[int], sum_logprobs: float, parent: int) -> None:
        score = sum_logprobs / (max(len(tokens), 1) ** self.length_penalty)
        if len(self.done) < self.beams or score > self.worst:
            self.done.append((score, tokens, parent))
            self.done.sort(key=lambda item: item[0], reverse=True)
            del self.done[self.beams :]

    @property
    def worst(self) -> float:
        return self.done[-1][0] if self.done else -float("inf")

    def finished(self, best_running: float, length: int) -> bool:
        if len(self.done) < self.beams:
            return False
        return self.worst >= best_running / (max(length, 1) ** self.length_penalty)


class BeamSearch:
    """Beam search (with or without sampling) over one input row expanded to `beams` rows."""

    def __init__(self, settings: SamplingSettings, stop_token: int, device: torch.device):
        self.settings = settings
        self.beams = settings.num_beams
        self.stop = stop_token
        self.scores = torch.zeros(self.beams, device=device)
        self.scores[1:] = -1e9  # all beams start identical: only the first may expand
        self.hypotheses = Hypotheses(self.beams, settings.length_penalty)
        self.tokens: list[list[int]] = [[] for _ in range(self.beams)]
        self.is_done = False

    def step(
        self, logits: torch.Tensor, seen: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: (beams, V) logits → (parent rows, next tokens) for the running beams."""
        vocab = logits.shape[-1]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        processed = process(logprobs, seen, self.settings, min_keep=2)
        total = (processed + self.scores[:, None]).view(1, -1)
        keep = 2 * self.beams
        if self.settings.do_sample:
            drawn = torch.multinomial(total.softmax(dim=-1), keep, generator=generator)
            values = torch.gather(total, 1, drawn)
            values, order = torch.sort(values, descending=True, dim=1)
            drawn = torch.gather(drawn, 1, order)
        else:
            values, drawn = torch.topk(total, keep, dim=1)
        parents_all = (drawn // vocab)[0].tolist()
        tokens_all = (drawn % vocab)[0].tolist()
        values_all = values[0].tolist()
        length = len(self.tokens[0]) + 1
        parents, tokens, scores = [], [], []
        for rank, (parent, token, value) in enumerate(
            zip(parents_all, tokens_all, values_all, strict=True)
        ):
            if token == self.stop:
                if rank < self.beams:
                    self.hypotheses.add(list(self.tokens[parent]), value, parent)
                continue
            parents.append(parent)
            tokens.append(token)
            scores.append(value)
            if len(parents) == self.beams:
                break
        self.tokens = [self.tokens[p] + [t] for p, t in zip(parents, tokens, strict=True)]
        self.scores = torch.tensor(scores, device=logits.device)
        self.is_done = self.hypotheses.finished(max(values_all), length)
        device = logits.device
        return torch.tensor(parents, device=device), torch.tensor(tokens, device=device)

    def best(self) -> list[int]:
        """The best finished sequence (running beams count when too few finished)."""
        if not self.is_done:
            for row, tokens in enumerate(self.tokens):
                self.hypotheses.add(list(tokens), float(self.scores[row]), row)
        return self.hypotheses.done[0][1]
