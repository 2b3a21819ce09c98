"""Splits text into the pieces a TTS model speaks one at a time.

A piece is a sentence, or a part of a sentence longer than the model takes at once.
One splitter serves whole texts and text that arrives in fragments (BidiSynthesize):
a cut is made only once the text it depends on has arrived, so both give the same
pieces at the same character offsets (code points, as in the protos).

- A sentence ends after `.`, `!`, `?` or `…` (a run of them, then any closing quotes
  or brackets) once whitespace and more text follow; not after a title such as
  "Dr.", a single capital initial ("J.") or a dotted abbreviation ("U.S.", "e.g.").
- A blank line ends a sentence too (headings, list items, paragraphs).
- A sentence longer than `max_chars` is cut after the last clause mark (`,` `;` `:`
  dash) that is followed by a space within the limit, else at the last space, else
  at exactly `max_chars`.
- Whitespace between pieces belongs to none of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLOSERS = "\"'”’»)\\]}"
_SENTENCE_END = re.compile(rf"[.!?…]+[{_CLOSERS}]*(?=\s)")
_PARAGRAPH_END = re.compile(r"\S(?=[^\S\n]*\n\s*\n)")
_CLAUSE_END = re.compile(rf"[,;:—–][{_CLOSERS}]*(?=\s)")
_WORD_BEFORE = re.compile(r"[\w.'’-]*$")
_SPACES = re.compile(r"\s*")
# Words that end in a full stop without ending the sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "mx",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "vs",
        "fig",
        "approx",
        "dept",
        "capt",
        "col",
        "gen",
        "gov",
        "lt",
        "sgt",
        "rev",
    ]
)


@dataclass(frozen=True)
class Piece:
    """A piece of the input text, with its place in it."""

    index: int
    text: str
    start_char: int
    end_char: int


class TextSplitter:
    """Cuts text fed in fragments into pieces as soon as each cut is certain."""

    def __init__(self, max_chars: int) -> None:
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        self._max = max_chars
        self._buffer = ""
        self._offset = 0  # of _buffer[0] in the whole text
        self._count = 0

    @property
    def received_chars(self) -> int:
        """Characters fed so far."""
        return self._offset + len(self._buffer)

    def feed(self, text: str) -> list[Piece]:
        """The pieces these characters complete."""
        self._buffer += text
        return self._take(final=False)

    def flush(self) -> list[Piece]:
        """Everything pending, as pieces, even an unfinished sentence. Text fed
        afterwards starts a new piece."""
        return self._take(final=True)

    def _take(self, *, final: bool) -> list[Piece]:
        pieces: list[Piece] = []
        while True:
            self._advance(_SPACES.match(self._buffer).end())  # type: ignore[union-attr]
            if not self._buffer:
                return pieces
            end = self._next_cut(final)
            if end is None:
                return pieces
            text = self._buffer[:end].rstrip()
            pieces.append(Piece(self._count, text, self._offset, self._offset + len(text)))
            self._count += 1
            self._advance(end)

    def _advance(self, count: int) -> None:
        self._buffer = self._buffer[count:]
        self._offset += count

    def _next_cut(self, final: bool) -> int | None:
        """Where the piece at the start of the buffer ends, or None while undecided."""
        buffer = self._buffer
        end = self._first_sentence_end()
        if end is not None:
            after = _SPACES.match(buffer, end).end()  # type: ignore[union-attr]
            if after < len(buffer) or final:
                return end
            # Nothing after it yet: a later fragment decides whether it ends here.
            return None
        if len(buffer.rstrip()) <= self._max:
            return len(buffer) if final else None
        return self._cut_long()

    def _first_sentence_end(self) -> int | None:
        """The first place, within max_chars, where a sentence may end."""
        buffer = self._buffer
        first = None
        for match in _SENTENCE_END.finditer(buffer):
            if match.end() > self._max:
                break
            if _ends_sentence(buffer, match):
                first = match.end()
                break
        paragraph = _PARAGRAPH_END.search(buffer)
        if paragraph is not None and paragraph.end() <= self._max:
            first = paragraph.end() if first is None else min(first, paragraph.end())
        return first

    def _cut_long(self) -> int:
        window = self._buffer[: self._max + 1]
        clauses = [m.end() for m in _CLAUSE_END.finditer(window) if m.end() <= self._max]
        if clauses:
            return clauses[-1]
        space = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
        return space if space > 0 else self._max


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    if match.group() != ".":
        return True
    word = _WORD_BEFORE.search(text, 0, match.start())
    token = word.group() if word else ""
    if "." in token:  # U.S., e.g.
        return False
    if len(token) == 1 and token.isupper():  # an initial
        return False
    return token.lower() not in _ABBREVIATIONS


def split_text(text: str, max_chars: int) -> list[Piece]:
    """A whole text's pieces."""
    splitter = TextSplitter(max_chars)
    return splitter.feed(text) + splitter.flush()
