"""MeloTTS's Spanish front-end, as its reference has it.

Normalisation (its spanish_cleaners): lower case; ";" and ":" become ",", "-" a space,
"&" "y", apostrophes go; CJK and typographic punctuation become Latin (… ... $ become
"."; quotes, brackets become "'" and are then dropped with < > ( ) [ ] " « »); leading
". , ! ?" go, whitespace collapses, and a "." ends a text that ends otherwise. Numbers
are left to gruut. Each word of the BERT tokens is read by gruut's Spanish (es-es).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from speechmesh.services.tts.melotts.english_g2p import Phonemes
from speechmesh.services.tts.melotts.gruut_g2p import GruutReader
from speechmesh.services.tts.melotts.reading import Tokenize
from speechmesh.services.tts.melotts.splitting import split_latin
from speechmesh.services.tts.melotts.words import TokenReader, read_tokens

_PUNCTUATION = {
    "：": ",",
    "；": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": ".",
    "·": ",",
    "、": ",",
    "...": ".",
    "…": ".",
    "$": ".",
    "“": "'",
    "”": "'",
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
    "—": "",
    "～": "-",
    "~": "-",
    "「": "'",
    "」": "'",
}
_PUNCTUATION_RE = re.compile("|".join(re.escape(p) for p in _PUNCTUATION))


def normalize(text: str) -> str:
    text = text.lower()
    text = text.replace(";", ",").replace("-", " ").replace(":", ",")
    text = text.replace("&", "y").replace("'", "")
    text = _PUNCTUATION_RE.sub(lambda m: _PUNCTUATION[m.group()], text)
    text = re.sub(r"[\<\>\(\)\[\]\"\«\»\']+", "", text)
    text = re.sub(r"^[,.!?]+", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"([^\.,!\?\-…])$", r"\1.", text)


class SpanishReader(TokenReader):
    def __init__(
        self, tokenize: Tokenize, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> None:
        super().__init__(tokenize, symbols, options)
        self.gruut = GruutReader("es-es")

    def split(self, text: str) -> list[str]:
        return split_latin(text)

    def normalize(self, piece: str) -> str:
        return normalize(piece)

    def phonemes(self, tokens: list[str]) -> Phonemes:
        return read_tokens(tokens, self.gruut)
