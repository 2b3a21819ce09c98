"""How MeloTTS's Spanish, French, Korean and Japanese front-ends walk the BERT tokens:
words as english_g2p.word_groups cuts them, each word's phones dealt over its tokens
(word2ph), the [CLS] and [SEP] pads one phone each. The Reader they are is reading.py's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from speechmesh.services.tts.melotts.english_g2p import Phonemes, deal_phones, word_groups
from speechmesh.services.tts.melotts.reading import Reading, Tokenize


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
