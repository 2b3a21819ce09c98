"""The multilingual model's alignment guard (the reference's AlignmentStreamAnalyzer):
three attention heads of T3 follow the text as speech is generated; from them the
guard keeps the stop token away until the text is nearly spoken, and forces it on a
long tail, on a jump back into spoken text, or when a token repeats.

One guard per request: it holds that request's alignment so far, fed one chunk of
attention (queries × text keys) per generated token.
"""

from __future__ import annotations

import torch

# (layer, head) of the heads that align (LLAMA_ALIGNED_HEADS).
ALIGNED_HEADS = ((12, 15), (13, 11), (9, 2))
FORCE = 2.0**15


class AlignmentGuard:
    def __init__(self, text_length: int, stop_token: int) -> None:
        self.text_length = text_length
        self.stop_token = stop_token
        self.alignment = torch.zeros(0, text_length)
        self.frame = 0
        self.text_position = 0
        self.started = False
        self.complete = False
        self.completed_at: int | None = None
        self.recent: list[int] = []

    def step(self, chunk: torch.Tensor, logits: torch.Tensor, last_token: int) -> torch.Tensor:
        """chunk: [queries, text_length] mean attention of the aligned heads on the text,
        for the positions just computed; logits [1, V] → the guarded logits."""
        chunk = chunk.detach().float().cpu().clone()
        chunk[:, self.frame + 1 :] = 0
        self.alignment = torch.cat((self.alignment, chunk), dim=0)
        alignment = self.alignment
        frames, length = alignment.shape

        position = int(chunk[-1].argmax())
        if -4 < position - self.text_position < 7:
            self.text_position = position
        false_start = (not self.started) and bool(
            alignment[-2:, -2:].max() > 0.1 or alignment[:, :4].max() < 0.5
        )
        self.started = not false_start
        self.complete = self.complete or self.text_position >= length - 3
        if self.complete and self.completed_at is None:
            self.completed_at = frames
        long_tail = repetition = False
        if self.complete:
            tail = alignment[self.completed_at :]
            long_tail = bool(tail[:, -3:].sum(dim=0).max() >= 5)
            # (The reference fails on texts of 5 tokens or fewer here; they never repeat.)
            repetition = length > 5 and bool(tail[:, :-5].max(dim=1).values.sum() > 5)
        self.recent = [*self.recent, last_token][-8:]
        repeated = len(self.recent) >= 3 and len(set(self.recent[-2:])) == 1

        if position < length - 3 and length > 5:
            logits[..., self.stop_token] = -FORCE
        if long_tail or repetition or repeated:
            logits = -FORCE * torch.ones_like(logits)
            logits[..., self.stop_token] = FORCE
        self.frame += 1
        return logits
