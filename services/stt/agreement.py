"""The committed prefix of a live transcript: words two successive decodes agree on.

Each interim decode of a growing utterance starts from the committed words (they are
its forced prefix) and proposes a tail. Words at the head of the tail that the
previous decode proposed too are committed: from then on they never change, neither
in later interims nor in the final. What is left is the unstable tail, which may
still be rewritten. Words compare without case or punctuation, so "dog" and "dog."
agree; the newer spelling is kept.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

_STRIP = string.punctuation + "“”‘’¿¡…"


def _key(word: str) -> str:
    return word.strip(_STRIP).lower()


@dataclass
class Agreement:
    committed: list[str] = field(default_factory=list)
    unstable: list[str] = field(default_factory=list)

    @property
    def committed_text(self) -> str:
        return " ".join(self.committed)

    @property
    def words(self) -> list[str]:
        return self.committed + self.unstable

    @property
    def stability(self) -> float:
        """The share of the current words that are committed."""
        total = len(self.committed) + len(self.unstable)
        return len(self.committed) / total if total else 0.0

    def update(self, transcript: str) -> None:
        """Takes a decode of the utterance so far (it starts with the committed words)."""
        words = transcript.split()
        tail = words[len(self.committed) :] if self._starts_committed(words) else words
        agreed = 0
        for previous, current in zip(self.unstable, tail, strict=False):
            if _key(previous) != _key(current):
                break
            agreed += 1
        self.committed += tail[:agreed]
        self.unstable = tail[agreed:]

    def _starts_committed(self, words: list[str]) -> bool:
        head = words[: len(self.committed)]
        return [_key(w) for w in head] == [_key(w) for w in self.committed]
