"""The synthesizer's text front-end: English cleaners and the symbol set it was trained on.

The cleaners transliterate to ASCII (unidecode), lowercase, spell out numbers (inflect),
expand common abbreviations and collapse whitespace. Segments in curly braces (ARPAbet
in the original training code) are dropped, as are characters outside the symbol set;
the end-of-sequence symbol `~` closes every sequence.
"""

from __future__ import annotations

import re

from unidecode import unidecode

from speechmesh.services.tts.english import spell_numbers

PAD = "_"
EOS = "~"
PUNCTUATION = "!'\"(),-.:;? "
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SYMBOLS = (PAD, EOS, *LETTERS, *PUNCTUATION)
SYMBOL_IDS = {symbol: index for index, symbol in enumerate(SYMBOLS)}
SPEAKABLE = frozenset(SYMBOLS) - {PAD, EOS}

_ABBREVIATIONS = {
    "mrs": "misess",
    "mr": "mister",
    "dr": "doctor",
    "st": "saint",
    "co": "company",
    "jr": "junior",
    "maj": "major",
    "gen": "general",
    "drs": "doctors",
    "rev": "reverend",
    "lt": "lieutenant",
    "hon": "honorable",
    "sgt": "sergeant",
    "capt": "captain",
    "esq": "esquire",
    "ltd": "limited",
    "col": "colonel",
    "ft": "fort",
    "mk": "mark",
    "jan": "january",
    "feb": "february",
    "mar": "march",
    "apr": "april",
    "aug": "august",
    "sept": "september",
    "oct": "october",
    "nov": "november",
    "dec": "december",
}
# Longest first, so "mrs." is not read as "mr" + "s.".
_ABBREVIATION_RE = re.compile(
    r"\b(" + "|".join(sorted(_ABBREVIATIONS, key=len, reverse=True)) + r")\.", re.IGNORECASE
)
_BRACES_RE = re.compile(r"\{[^{}]*\}")
_WHITESPACE_RE = re.compile(r"\s+")


def clean(text: str) -> str:
    """The English cleaners: ASCII, lowercase, numbers, abbreviations, single spaces."""
    text = unidecode(text).lower()
    text = spell_numbers(text)
    text = _ABBREVIATION_RE.sub(lambda m: _ABBREVIATIONS[m.group(1).lower()], text)
    return _WHITESPACE_RE.sub(" ", text)


def token_ids(text: str) -> list[int]:
    """Symbol ids of one piece of text, EOS last; braces segments and unknown characters
    are dropped (each segment between them is cleaned on its own, as in training)."""
    ids: list[int] = []
    for segment in _BRACES_RE.split(text.strip()):
        ids.extend(SYMBOL_IDS[c] for c in clean(segment) if c in SPEAKABLE)
    ids.append(SYMBOL_IDS[EOS])
    return ids


def speakable(ids: list[int]) -> bool:
    """Whether a sequence holds more than spaces and the end symbol."""
    return any(SYMBOLS[i] not in (" ", EOS) for i in ids)
