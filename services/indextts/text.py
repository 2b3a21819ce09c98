"""Text front-end as the release's TextTokenizer: normalise, split CJK, BPE, segments.

Text of more than one character is normalised (normalizer.py: WeTextProcessing with the
release's protections), then every CJK character becomes a word of its own and the
rest is upper-cased, as bpe.model expects; a single character goes to the BPE model as
it is. Segments follow the release's split_segments_by_token exactly, quirks included:
a piece ends at a sentence mark once it has more than 2 tokens; a comma (or, lacking
one, a hyphen) always cuts the piece there, recursively; a piece over the limit is cut
every `limit` tokens; a quote right after a sentence mark is kept with the sentence
*and* starts the next one; neighbours are merged while they fit the limit (and have
passed `quick_tokens` in total) or fit half of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sentencepiece

from speechmesh.runtime.errors import FailedPrecondition

_CJK = re.compile(
    r"([\u1100-\u11ff\u2e80-\ua4cf\ua840-\uD7AF\uF900-\uFAFF\uFE30-\uFE4F\uFF65-\uFFDC\U00020000-\U0002FFFF])"
)
SENTENCE_MARKS = (".", "!", "?", "▁.", "▁?", "▁...")
COMMAS = (",", "▁,")
QUOTES = ("'", "▁'")


def pre_tokenize(text: str) -> str:
    """Each CJK character a word of its own; everything else upper-cased."""
    pieces = _CJK.split(text.strip())
    return " ".join(p.strip().upper() for p in pieces if p.strip())


@dataclass(frozen=True)
class Segment:
    tokens: list[str]
    ids: list[int]


class TextFrontEnd:
    def __init__(self, bpe_model: Path, normalize: Callable[[str], str]) -> None:
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(bpe_model))
        except (OSError, RuntimeError) as error:
            raise FailedPrecondition(
                f"{bpe_model} is not a SentencePiece model: {error}"
            ) from error
        self.normalize = normalize

    @property
    def unk_id(self) -> int:
        return int(self.sp.unk_id())

    def tokenize(self, text: str) -> list[str]:
        if not text:
            return []
        if len(text.strip()) == 1:  # the release encodes one character as it is
            return list(self.sp.encode(text, out_type=str))
        return list(self.sp.encode(pre_tokenize(self.normalize(text)), out_type=str))

    def ids(self, tokens: list[str]) -> list[int]:
        return [int(self.sp.piece_to_id(token)) for token in tokens]

    def segments(
        self, text: str, max_tokens: int = 120, first_max_tokens: int = 0
    ) -> list[Segment]:
        tokens = self.tokenize(text)
        return [
            Segment(part, self.ids(part))
            for part in split_segments(tokens, max_tokens, first_max_tokens)
        ]


def split_by(
    tokens: list[str], marks: tuple[str, ...], limit: int, quick_tokens: int = 0
) -> list[list[str]]:
    """The release's split_segments_by_token (see the module docstring for its rules)."""
    pieces: list[list[str]] = []
    current: list[str] = []
    for i, token in enumerate(tokens):
        current.append(token)
        if not any(c in marks for c in COMMAS) and any(c in current for c in COMMAS):
            cut = split_by(current, COMMAS, limit, quick_tokens)
        elif "-" not in marks and "-" in current:
            cut = split_by(current, ("-",), limit, quick_tokens)
        elif len(current) <= limit:
            if token in marks and len(current) > 2:
                if i < len(tokens) - 1 and tokens[i + 1] in QUOTES:
                    current.append(tokens[i + 1])  # and it is read again as the next token
                pieces.append(current)
                current = []
            continue
        else:
            cut = [current[j : j + limit] for j in range(0, len(current), limit)]
        pieces.extend(cut)
        current = []
    if current:
        pieces.append(current)
    merged: list[list[str]] = []
    total = 0
    for piece in pieces:
        total += len(piece)
        if not piece:
            continue
        if not merged:
            merged.append(piece)
        elif (size := len(merged[-1]) + len(piece)) <= limit / 2 or (
            size <= limit and total > quick_tokens
        ):
            merged[-1] = merged[-1] + piece
        else:
            merged.append(piece)
    return merged


def split_segments(
    tokens: list[str], max_tokens: int, first_max_tokens: int = 0
) -> list[list[str]]:
    """The release's segments of at most `max_tokens`; with `first_max_tokens` > 0 (a
    streaming option of this service, not of the release) the first segment is cut
    again by the same rules at that limit so the first audio comes sooner."""
    segments = split_by(tokens, SENTENCE_MARKS, max_tokens)
    if first_max_tokens > 0 and segments and len(segments[0]) > first_max_tokens:
        head = split_by(segments[0], SENTENCE_MARKS, min(first_max_tokens, max_tokens))
        segments = head + segments[1:]
    return segments
