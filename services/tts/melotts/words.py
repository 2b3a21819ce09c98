"""How MeloTTS's non-English front-ends walk the BERT tokens: a word is a token and the
`##` pieces after it (any token starting with "#" continues the word); its phones are
dealt over its tokens (word2ph), the [CLS] and [SEP] pads one phone each."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from speechmesh.services.tts.melotts.english_g2p import Phonemes, deal_phones


def word_groups(tokens: list[str]) -> list[list[str]]:
    """Tokens grouped into words, "#" marks removed from the continuing pieces."""
    words: list[list[str]] = []
    for token in tokens:
        if token.startswith("#"):
            if not words:
                raise ValueError(f"the text starts with a continuation token {token!r}")
            words[-1].append(token.replace("#", ""))
        else:
            words.append([token])
    return words


def read_tokens(tokens: list[str], read: Callable[[str], str]) -> Phonemes:
    """As the reference's Spanish and French g2p: [UNK] reads "UNK", any other word the
    characters of its reading, spaces dropped; tone 0 throughout; padded with "_"."""
    phones, word2ph = ["_"], [1]
    for pieces in word_groups(tokens):
        word = "".join(pieces)
        read_as = ["UNK"] if word == "[UNK]" else [c for c in read(word) if c != " "]
        phones += read_as
        word2ph += deal_phones(len(read_as), len(pieces))
    phones.append("_")
    return Phonemes(phones, [0] * len(phones), [*word2ph, 1])


Tokenize = Callable[[str], list[str]]


@dataclass(frozen=True)
class Reading:
    normalized: str
    """What the BERT reads."""
    phonemes: Phonemes
    """Before blanks; tones before the language's tone offset."""


class Reader(Protocol):
    """A language's front-end, built with the BERT's tokenizer, the model's symbols and
    the model's options."""

    def split(self, text: str) -> list[str]:
        """A whole text in the pieces the reference synthesizes one at a time."""
        ...

    def read(self, piece: str) -> Reading:
        """ValueError naming what in the piece cannot be read."""
        ...


class TokenReader:
    """The shape of every non-English reader: a normalisation and a reading of the
    normalised text's BERT tokens, the splitter its language's."""

    def __init__(self, tokenize: Tokenize, symbols: Sequence[str], options: Mapping[str, Any]):
        self.tokenize = tokenize

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def normalize(self, piece: str) -> str:
        raise NotImplementedError

    def phonemes(self, tokens: list[str]) -> Phonemes:
        raise NotImplementedError

    def read(self, piece: str) -> Reading:
        normalized = self.normalize(piece)
        return Reading(normalized, self.phonemes(self.tokenize(normalized)))
