"""MeloTTS's French front-end, as its reference has it.

Normalisation (its french_cleaners; case is kept, the BERT is cased): abbreviations
expanded ("M." monsieur, "Mme" Madame, "etc." et cetera ..., the reference's patterns as
written, unescaped dots included); CJK and typographic punctuation become Latin or go
(… ... $ become "."; quotes, brackets, ¿ ¡ go); ";" and ":" become ",", "-" a space,
"&" " et "; < > ( ) [ ] " « » go, leading ". , ! ?" too, whitespace collapses, and a "."
ends a text that ends otherwise. Numbers are left to gruut. Each word of the BERT tokens
is read by gruut's French (fr-fr), and any run of three or more "t" is dropped from the
reading, as the reference does.
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

_DOTTED = [
    ("M", "monsieur"),
    ("Mlle", "mademoiselle"),
    ("Mlles", "mesdemoiselles"),
    ("Mme", "Madame"),
    ("Mmes", "Mesdames"),
    ("N.B", "nota bene"),
    ("M", "monsieur"),
    ("p.c.q", "parce que"),
    ("Pr", "professeur"),
    ("qqch", "quelque chose"),
    ("rdv", "rendez-vous"),
    ("max", "maximum"),
    ("min", "minimum"),
    ("no", "numéro"),
    ("adr", "adresse"),
    ("dr", "docteur"),
    ("st", "saint"),
    ("co", "companie"),
    ("jr", "junior"),
    ("sgt", "sergent"),
    ("capt", "capitain"),
    ("col", "colonel"),
    ("av", "avenue"),
    ("av. J.-C", "avant Jésus-Christ"),
    ("apr. J.-C", "après Jésus-Christ"),
    ("art", "article"),
    ("boul", "boulevard"),
    ("c.-à-d", "c’est-à-dire"),
    ("etc", "et cetera"),
    ("ex", "exemple"),
    ("excl", "exclusivement"),
    ("boul", "boulevard"),
]
_BARE = [
    ("Mlle", "mademoiselle"),
    ("Mlles", "mesdemoiselles"),
    ("Mme", "Madame"),
    ("Mmes", "Mesdames"),
]
# In the reference's order: the dotted forms (any case), then the bare titles (as cased).
_ABBREVIATIONS = [(re.compile(rf"\b{a}\.", re.IGNORECASE), b) for a, b in _DOTTED] + [
    (re.compile(rf"\b{a}"), b) for a, b in _BARE
]
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
    **dict.fromkeys("“”‘’（）()《》【】[]—「」¿¡", ""),
    "～": "-",
    "~": "-",
}
_PUNCTUATION_RE = re.compile("|".join(re.escape(p) for p in _PUNCTUATION))


def normalize(text: str) -> str:
    for pattern, expansion in _ABBREVIATIONS:
        text = pattern.sub(expansion, text)
    text = _PUNCTUATION_RE.sub(lambda m: _PUNCTUATION[m.group()], text)
    text = text.replace(";", ",").replace("-", " ").replace(":", ",").replace("&", " et ")
    text = re.sub(r"[\<\>\(\)\[\]\"\«\»]+", "", text)
    text = re.sub(r"^[,.!?]+", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"([^\.,!\?\-…])$", r"\1.", text)


def _drop_long_t_runs(reading: str) -> str:
    return re.sub(r"t{3,}", "", reading)


class FrenchReader(TokenReader):
    def __init__(
        self, tokenize: Tokenize, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> None:
        super().__init__(tokenize, symbols, options)
        self.gruut = GruutReader("fr-fr")

    def split(self, text: str) -> list[str]:
        return split_latin(text)

    def normalize(self, piece: str) -> str:
        return normalize(piece)

    def phonemes(self, tokens: list[str]) -> Phonemes:
        return read_tokens(tokens, lambda word: _drop_long_t_runs(self.gruut(word)))
