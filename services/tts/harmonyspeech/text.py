"""The synthesizer's text front-end: English cleaners and the symbol set it was trained on.

The cleaners transliterate to ASCII (unidecode), lowercase, spell out numbers (inflect),
expand common abbreviations and collapse whitespace. Segments in curly braces (ARPAbet
in the original training code) are dropped, as are characters outside the symbol set;
the end-of-sequence symbol `~` closes every sequence.
"""

from __future__ import annotations

import re

import inflect
from unidecode import unidecode

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
_GROUPED_RE = re.compile(r"[0-9][0-9,]+[0-9]")
_POUNDS_RE = re.compile(r"£([0-9,]*[0-9]+)")
_DOLLARS_RE = re.compile(r"\$([0-9.,]*[0-9]+)")
_DECIMAL_RE = re.compile(r"([0-9]+)\.([0-9]+)")
_ORDINAL_RE = re.compile(r"[0-9]+(?:st|nd|rd|th)")
_NUMBER_RE = re.compile(r"[0-9]+")

_inflect = inflect.engine()


def _unit(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _dollars(match: re.Match[str]) -> str:
    parts = match.group(1).split(".")
    if len(parts) > 2:
        return f"{match.group(1)} dollars"
    dollars = int(parts[0]) if parts[0] else 0
    cents = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    if dollars and cents:
        return f"{_unit(dollars, 'dollar', 'dollars')}, {_unit(cents, 'cent', 'cents')}"
    if dollars:
        return _unit(dollars, "dollar", "dollars")
    if cents:
        return _unit(cents, "cent", "cents")
    return "zero dollars"


def _cardinal(match: re.Match[str]) -> str:
    number = int(match.group(0))
    # Numbers between 1000 and 3000 are read as years ("nineteen eighty-four").
    if 1000 < number < 3000:
        if number == 2000:
            return "two thousand"
        if 2000 < number < 2010:
            return "two thousand " + str(_inflect.number_to_words(number % 100))
        if number % 100 == 0:
            return str(_inflect.number_to_words(number // 100)) + " hundred"
        words = _inflect.number_to_words(number, andword="", zero="oh", group=2)
        return str(words).replace(", ", " ")
    return str(_inflect.number_to_words(number, andword=""))


def spell_numbers(text: str) -> str:
    """Digits as English words: grouping commas, £ and $ amounts, decimals, ordinals."""
    text = _GROUPED_RE.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _POUNDS_RE.sub(r"\1 pounds", text)
    text = _DOLLARS_RE.sub(_dollars, text)
    text = _DECIMAL_RE.sub(r"\1 point \2", text)
    text = _ORDINAL_RE.sub(lambda m: str(_inflect.number_to_words(m.group(0))), text)
    return _NUMBER_RE.sub(_cardinal, text)


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
