"""Text front-end: normalisation, CJK-aware pre-tokenisation, SentencePiece BPE, segments.

Normalisation maps Chinese and typographic punctuation to the ASCII marks the BPE
model knows (，→ , 。→ . ：→ , quotes and brackets → ' …), folds "…"/"..." and
expands English contractions ("it's" → "it is") as the reference does. Full
number/date verbalisation (WeTextProcessing) is not included. Pre-tokenisation puts
spaces around every CJK character and upper-cases the rest, as bpe.model expects.
Segments end at sentence marks, fall back to commas, then to hard cuts, and are
merged back up to the token limit; the first may be kept short so the first audio
comes sooner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sentencepiece

from speechmesh.runtime.errors import FailedPrecondition

PUNCTUATION_MAP = {
    "：": ",",
    "；": ",",
    ";": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": " ",
    "·": "-",
    "、": ",",
    "...": "…",
    ",,,": "…",
    "，，，": "…",
    "……": "…",
    "“": "'",
    "”": "'",
    '"': "'",
    "‘": "'",
    "’": "'",
    "（": "'",
    "）": "'",
    "(": "'",
    ")": "'",
    "《": "'",
    "》": "'",
    "【": "'",
    "】": "'",
    "[": "'",
    "]": "'",
    "—": "-",
    "～": "-",
    "~": "-",
    "「": "'",
    "」": "'",
    ":": ",",
}
_PUNCTUATION = re.compile(
    "|".join(re.escape(k) for k in sorted(PUNCTUATION_MAP, key=len, reverse=True))
)
_CONTRACTION = re.compile(r"(what|where|who|which|how|t?here|it|s?he|that|this)'s", re.IGNORECASE)
_CJK = re.compile(
    r"([\u1100-\u11ff\u2e80-\ua4cf\ua840-\uD7AF\uF900-\uFAFF\uFE30-\uFE4F\uFF65-\uFFDC\U00020000-\U0002FFFF])"
)
_SPACES = re.compile(r"\s+")
SENTENCE_ENDS = frozenset({".", "!", "?", "▁.", "▁?", "▁...", "▁!", "…", "▁…"})
CLAUSE_ENDS = frozenset({",", "▁,"})


def normalize(text: str) -> str:
    """Punctuation folded to what the BPE model knows; English contractions expanded."""
    text = _CONTRACTION.sub(r"\1 is", text)
    text = _PUNCTUATION.sub(lambda m: PUNCTUATION_MAP[m.group()], text)
    return _SPACES.sub(" ", text).strip()


def pre_tokenize(text: str) -> str:
    """Each CJK character a word of its own; everything else upper-cased."""
    pieces = _CJK.split(text.strip())
    return " ".join(p.strip().upper() for p in pieces if p.strip())


@dataclass(frozen=True)
class Segment:
    tokens: list[str]
    ids: list[int]


class TextFrontEnd:
    def __init__(self, bpe_model: Path) -> None:
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(bpe_model))
        except (OSError, RuntimeError) as error:
            raise FailedPrecondition(
                f"{bpe_model} is not a SentencePiece model: {error}"
            ) from error

    @property
    def unk_id(self) -> int:
        return int(self.sp.unk_id())

    def tokenize(self, text: str) -> list[str]:
        if not text.strip():
            return []
        prepared = pre_tokenize(normalize(text))
        return list(self.sp.encode(prepared, out_type=str))

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


def _cut(tokens: list[str], ends: frozenset[str], limit: int) -> list[list[str]]:
    """Pieces ending at `ends`; a piece still over `limit` is cut at clauses, then hard."""
    pieces: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        current.append(token)
        if token in ends and len(current) > 1:
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    out: list[list[str]] = []
    for piece in pieces:
        if len(piece) <= limit:
            out.append(piece)
        elif ends is SENTENCE_ENDS:
            out.extend(_cut(piece, CLAUSE_ENDS, limit))
        else:
            out.extend(piece[i : i + limit] for i in range(0, len(piece), limit))
    return out


def split_segments(
    tokens: list[str], max_tokens: int, first_max_tokens: int = 0
) -> list[list[str]]:
    """Segments of at most `max_tokens` (the first at most `first_max_tokens` when > 0)."""
    if not tokens:
        return []
    first_limit = min(first_max_tokens, max_tokens) if first_max_tokens > 0 else max_tokens
    pieces = _cut(tokens, SENTENCE_ENDS, first_limit)
    rest = _cut([t for piece in pieces[1:] for t in piece], SENTENCE_ENDS, max_tokens)
    merged = [pieces[0]]
    for piece in rest:
        limit = first_limit if len(merged) == 1 else max_tokens
        if len(merged[-1]) + len(piece) <= limit:
            merged[-1] = merged[-1] + piece
        else:
            merged.append(piece)
    return merged
