"""Speech-token generation for a batch of requests, each with its own voice, text,
sampling settings and random generator, in one backbone call per step.

Every request is one row, or two with classifier-free guidance (the second row's text
embeddings zeroed); rows are left-padded to a common length with their own sequence
positions, so each row computes what it would alone. Each step, per request, as the
reference:

- standard and multilingual: logits = cond + cfg · (cond − uncond); (multilingual:
  the alignment guard); repetition penalty over the start token and the tokens so far;
  temperature; min-p; top-p; one multinomial draw;
- turbo (no guidance): temperature, top-k, top-p, then the repetition penalty (over
  the start token at the first step, the generated tokens after), one draw.

A request ends at the stop token (kept in its tokens, as the reference's), after
max_new_tokens, or once its `cancelled` flag is set (checked every step); its rows then
leave the batch. A job with `every` > 0 hands its tokens so far to `on_tokens` each
time it has made another `every` of them (a stream rendering audio as they come).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from speechmesh.services.tts.chatterbox.t3.alignment import ALIGNED_HEADS, AlignmentGuard
from speechmesh.services.tts.chatterbox.t3.conditioning import T3Conditionals
from speechmesh.services.tts.chatterbox.t3.config import START_SPEECH, STOP_SPEECH
from speechmesh.services.tts.chatterbox.t3.model import T3


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.8
    cfg_weight: float = 0.5
    repetition_penalty: float = 1.2
    min_p: float = 0.05
    top_p: float = 1.0
    top_k: int = 1000


class Flag(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class T3Job:
    """One request's generation."""

    cond: T3Conditionals
    text: list[int]
    """Text token ids as T3 reads them (with start and stop for standard/multilingual)."""
    sampling: Sampling
    generator: torch.Generator | None = None
    """Its own random draws; None: greedy (argmax), for parity and tests."""
    max_new_tokens: int | None = None
    every: int = 0
    on_tokens: Callable[[list[int]], None] | None = None
    """Called with the tokens so far after every `every` tokens (not at the stop)."""
    cancelled: Flag | None = None
    """Set when the caller has gone: the job stops before its next step."""
    tokens: list[int] = field(default_factory=list)
    done: bool = False


def _processors(model: T3, sampling: Sampling) -> list:
    from transformers.generation.logits_process import (
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    if model.config.backbone == "gpt2":
        chain: list = []
        if sampling.temperature > 0 and sampling.temperature != 1.0:
            chain.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k > 0:
            chain.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            chain.append(TopPLogitsWarper(sampling.top_p))
        if sampling.repetition_penalty != 1.0:
            chain.append(RepetitionPenaltyLogitsProcessor(float(sampling.repetition_penalty)))
        return chain
    return [
        RepetitionPenaltyLogitsProcessor(float(sampling.repetition_penalty)),
        TemperatureLogitsWarper(sampling.temperature) if sampling.temperature != 1.0 else None,
        MinPLogitsWarper(sampling.min_p),
        TopPLogitsWarper(sampling.top_p),
    ]


class _AttentionSpy:
    """Keeps the attention weights of the aligned layers from the last backbone call."""

    def __init__(self, model: T3) -> None:
        self.weights: dict[int, torch.Tensor] = {}
        self.handles = [
            model.tfmr.layers[layer].self_attn.register_forward_hook(self._hook(layer))
            for layer, _ in ALIGNED_HEADS
        ]

    def _hook(self, layer: int):  # type: ignore[no-untyped-def]
        def keep(_module, _inputs, output):  # type: ignore[no-untyped-def]
            self.weights[layer] = output[1]

        return keep

    def chunk(self, row: int, queries: slice, keys: slice) -> torch.Tensor:
        return torch.stack(
            [self.weights[layer][row, head, queries, keys] for layer, head in ALIGNED_HEADS]
        ).mean(dim=0)

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


class _Batch:
    """The rows of the requests still generating, and their backbone state."""

    def __init__(self, model: T3, jobs: Sequence[T3Job]) -> None:
        self.model = model
        self.jobs = list(jobs)
        rows: list[torch.Tensor] = []
        self.rows: list[list[int]] = []  # per job, its row indices
        for job in self.jobs:
            cond = model.conditioning(job.cond)
            guided = model.config.backbone == "llama" and job.sampling.cfg_weight > 0
            mine = [len(rows)]
            rows.append(model.prefix(cond, job.text, guided=True))
            if guided:
                mine.append(len(rows))
                rows.append(model.prefix(cond, job.text, guided=False))
            self.rows.append(mine)
        starts = 2 if model.config.backbone == "llama" else 1
        self.cond_lengths = [
            row.shape[0] - len(job.text) - starts
            for job, mine in zip(self.jobs, self.rows, strict=True)
            for row in (rows[r] for r in mine)
        ]
        longest = max(row.shape[0] for row in rows)
        self.pads = [longest - row.shape[0] for row in rows]
        dim = rows[0].shape[1]
        self.embeds = torch.stack(
            [
                torch.cat([row.new_zeros(pad, dim), row])
                for row, pad in zip(rows, self.pads, strict=True)
            ]
        )
        # Padding on the left, masked out, with each row's positions counted from its
        # first real input: every row computes what it would alone.
        self.mask = torch.zeros(len(rows), longest, dtype=torch.long, device=model.device)
        for index, pad in enumerate(self.pads):
            self.mask[index, pad:] = 1
        self.positions = (self.mask.cumsum(dim=1) - 1).clamp(min=0)
        self.cache = None

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        """Runs the backbone on new inputs [rows, n, D]; logits [rows, V] of the last."""
        length = embeds.shape[1]
        positions = self.positions[:, -length:]
        output = self.model.tfmr(
            inputs_embeds=embeds,
            attention_mask=self.mask,
            position_ids=positions,
            cache=self.cache,
            use_cache=True,
        )
        self.cache = output.cache
        logits: torch.Tensor = self.model.speech_head(output.last_hidden_state[:, -1])
        return logits

    def advance(self) -> None:
        """Extends masks and positions by one step."""
        ones = torch.ones(self.mask.shape[0], 1, dtype=torch.long, device=self.mask.device)
        self.mask = torch.cat([self.mask, ones], dim=1)
        self.positions = torch.cat([self.positions, self.positions[:, -1:] + 1], dim=1)

    def keep(self, rows: list[int]) -> None:
        """Drops every row not in `rows` (finished requests)."""
        index = torch.tensor(rows, device=self.mask.device)
        self.mask = self.mask[index]
        self.positions = self.positions[index]
        self.pads = [self.pads[r] for r in rows]
        self.cond_lengths = [self.cond_lengths[r] for r in rows]
        if self.cache is not None:
            self.cache.batch_select_indices(index)


def _pick(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    if generator is None:
        return int(probs.argmax(dim=-1))
    return int(torch.multinomial(probs, num_samples=1, generator=generator))


@torch.inference_mode()
def generate(model: T3, jobs: Sequence[T3Job]) -> list[list[int]]:
    """Each job's speech tokens as generated (the stop token last when it was drawn)."""
    config = model.config
    batch = _Batch(model, jobs)
    spy = _AttentionSpy(model) if config.alignment_guard else None
    guards = [
        AlignmentGuard(len(job.text), STOP_SPEECH) if config.alignment_guard else None
        for job in jobs
    ]
    chains = [_processors(model, job.sampling) for job in jobs]
    active = list(range(len(jobs)))
    try:
        logits = batch.forward(batch.embeds)
        step = 0
        while active:
            row_of = {j: i for i, j in enumerate(_active_rows(batch, active))}
            for j in active:
                job = jobs[j]
                if job.cancelled is not None and job.cancelled.is_set():
                    job.done = True
                    continue
                rows = [row_of[r] for r in batch.rows[j]]
                scores = logits[rows[0] : rows[0] + 1]
                if len(rows) == 2:
                    cfg = torch.as_tensor(
                        job.sampling.cfg_weight, device=scores.device, dtype=scores.dtype
                    )
                    scores = scores + cfg * (scores - logits[rows[1] : rows[1] + 1])
                if guards[j] is not None and spy is not None:
                    scores = guards[j].step(
                        _chunk(spy, batch, rows[0], len(job.text), step),
                        scores,
                        job.tokens[-1] if job.tokens else START_SPEECH,
                    )
                history = _history(config.backbone, job.tokens, scores.device)
                for processor in chains[j]:
                    if processor is not None:
                        scores = processor(history, scores)
                if config.backbone == "gpt2" and bool(torch.all(scores == -float("inf"))):
                    job.done = True
                    continue
                token = _pick(torch.softmax(scores, dim=-1), job.generator)
                job.tokens.append(token)
                limit = job.max_new_tokens or config.max_new_tokens
                if token == STOP_SPEECH or len(job.tokens) >= limit:
                    job.done = True
                elif job.on_tokens is not None and job.every and len(job.tokens) % job.every == 0:
                    job.on_tokens(list(job.tokens))
            still = [j for j in active if not jobs[j].done]
            if not still:
                break
            if len(still) < len(active):
                keep_rows = [row_of[r] for j in still for r in batch.rows[j]]
                batch.keep(keep_rows)
            active = still
            step += 1
            embeds = torch.cat(
                [
                    model.speech_embedding(
                        torch.tensor([jobs[j].tokens[-1]], device=model.device), step
                    )[None].expand(len(batch.rows[j]), -1, -1)
                    for j in active
                ]
            )
            batch.advance()
            logits = batch.forward(embeds)
    finally:
        if spy is not None:
            spy.close()
    return [job.tokens for job in jobs]


def _active_rows(batch: _Batch, active: list[int]) -> list[int]:
    """The original row indices of the active jobs, in batch order."""
    return [r for j in active for r in batch.rows[j]]


def _history(backbone: str, tokens: list[int], device: torch.device) -> torch.Tensor:
    """The ids the repetition penalty looks at: the start token and every generated
    token (standard, multilingual); Turbo's first step sees the start token, later
    ones only the generated tokens."""
    ids = [START_SPEECH, *tokens] if backbone == "llama" or not tokens else tokens
    return torch.tensor([ids], dtype=torch.long, device=device)


def _chunk(
    spy: _AttentionSpy, batch: _Batch, row: int, text_length: int, step: int
) -> torch.Tensor:
    """The aligned heads' attention of `row`'s newest positions on its text tokens."""
    start = batch.pads[row] + batch.cond_lengths[row]
    keys = slice(start, start + text_length)
    queries = slice(start + text_length, None) if step == 0 else slice(None)
    return spy.chunk(row, queries, keys)


@torch.inference_mode()
def first_logits(model: T3, job: T3Job) -> torch.Tensor:
    """[rows, V] speech logits of the first pass of one job, every row (conditional,
    then unconditional with guidance), before any processing."""
    batch = _Batch(model, [job])
    return batch.forward(batch.embeds)
