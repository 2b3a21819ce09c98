"""MeloTTS's English text normalisation, as its reference has it: lower case, clock times,
numbers (grouping commas, $ € £ ¥ amounts, decimals, ordinals, signed whole numbers read
years-style between 1000 and 3000) and title abbreviations, through inflect.
"""

from __future__ import annotations

import re

import inflect

from speechmesh.services.tts.english import expand_abbreviations, read_number

_inflect = inflect.engine()

_TIME_RE = re.compile(
    r"""\b
    ((0?[0-9])|(1[0-1])|(1[2-9])|(2[0-3]))   # hours
    :
    ([0-5][0-9])                             # minutes
    \s*(a\\.m\\.|am|pm|p\\.m\\.|a\\.m|p\\.m)?  # am/pm, with the reference's doubled escapes
    \b""",
    re.IGNORECASE | re.X,
)
_GROUPED_RE = re.compile(r"([0-9][0-9\,]+[0-9])")
_DECIMAL_RE = re.compile(r"([0-9]+\.[0-9]+)")
_CURRENCY_RE = re.compile(r"(£|\$|¥)([0-9\,\.]*[0-9]+)")
_ORDINAL_RE = re.compile(r"[0-9]+(st|nd|rd|th)")
_NUMBER_RE = re.compile(r"-?[0-9]+")

# The reference's table has a euro row, but its pattern never matches "€".
_CURRENCIES: dict[str, dict[float, str]] = {
    "$": {0.01: "cent", 0.02: "cents", 1: "dollar", 2: "dollars"},
    "£": {0.01: "penny", 0.02: "pence", 1: "pound sterling", 2: "pounds sterling"},
    "¥": {0.02: "sen", 2: "yen"},
}


def _time(match: re.Match[str]) -> str:
    hour = int(match.group(1))
    past_noon = hour >= 12
    if hour > 12:
        hour -= 12
    elif hour == 0:
        hour, past_noon = 12, True
    words = [str(_inflect.number_to_words(hour))]
    minute = int(match.group(6))
    if minute > 0:
        if minute < 10:
            words.append("oh")
        words.append(str(_inflect.number_to_words(minute)))
    marker = match.group(7)
    if marker is None:
        words.append("p m" if past_noon else "a m")
    else:
        words.extend(marker.replace(".", ""))
    return " ".join(words)


def _currency(match: re.Match[str]) -> str:
    units, value = _CURRENCIES[match.group(1)], match.group(2)
    parts = value.replace(",", "").split(".")
    if len(parts) > 2:
        return f"{value} {units[2]}"
    read = []
    whole = int(parts[0]) if parts[0] else 0
    if whole > 0:
        read.append(f"{whole} {units.get(whole, units[2])}")
    fraction = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    if fraction > 0:
        read.append(f"{fraction} {units.get(fraction / 100, units[0.02])}")
    return " ".join(read) if read else f"zero {units[2]}"


def normalize(text: str) -> str:
    text = _TIME_RE.sub(_time, text.lower())
    text = _GROUPED_RE.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _CURRENCY_RE.sub(_currency, text)
    text = _DECIMAL_RE.sub(lambda m: m.group(1).replace(".", " point "), text)
    text = _ORDINAL_RE.sub(lambda m: str(_inflect.number_to_words(m.group(0))), text)
    text = _NUMBER_RE.sub(lambda m: read_number(int(m.group(0))), text)
    text = expand_abbreviations(text)
    return text
