"""English as keithito's Tacotron cleaners read it, which the references of several TTS
families (HarmonySpeech, OpenVoice V1, MeloTTS) reuse. Numbers: grouping commas dropped,
£ and $ amounts, decimals ("point"), ordinals, and numbers between 1000 and 3000 read
as years ("nineteen eighty-four"), through inflect. Abbreviations: its table, in order.
"""

from __future__ import annotations

import re

import inflect

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
    return read_number(int(match.group(0)))


def read_number(number: int) -> str:
    """A whole number in words, years-style between 1000 and 3000."""
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


# keithito's abbreviation table (its English cleaners), in its order: each applied in
# turn, so "mrs." is read before "mr." can match.
_ABBREVIATIONS = [
    (re.compile(rf"\b{short}\.", re.IGNORECASE), long)
    for short, long in [
        ("mrs", "misess"),
        ("mr", "mister"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("maj", "major"),
        ("gen", "general"),
        ("drs", "doctors"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
    ]
]


def expand_abbreviations(text: str) -> str:
    """keithito's abbreviations ("dr." → "doctor"), as OpenVoice V1 and MeloTTS read them."""
    for pattern, replacement in _ABBREVIATIONS:
        text = pattern.sub(replacement, text)
    return text
