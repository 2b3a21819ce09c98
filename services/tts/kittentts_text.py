"""KittenTTS's text front-end: optional cleaning, chunking, and phonemes to token ids.

As the reference runtime (KittenML/KittenTTS 0.8) does it:
- cleaning (off by default): numbers, currency, percentages, times, ordinals and
  ranges spelled out; URLs, e-mail addresses and HTML tags dropped; lowercased;
- chunks: the text split at every run of `.`, `!` and `?` (which are dropped),
  sentences longer than 400 characters split between words, and every chunk made to
  end in punctuation (a "," is appended when it does not);
- tokens: espeak-ng phonemes (en-us, stress marks and punctuation kept), split into
  words and punctuation marks joined by single spaces, each character mapped through
  the model's symbol table (unknown ones dropped), wrapped as `[0] + ids + [10, 0]`.
"""

from __future__ import annotations

import re
import unicodedata

from speechmesh.services.tts import espeak

MAX_CHUNK_CHARS = 400
ESPEAK_VOICE = "en-us"
START_ID = 0
END_IDS = (10, 0)

# The model's symbol table, in order: pad, punctuation, Latin letters, IPA. Some
# characters appear twice; as in the reference, the later index wins.
_PAD = "$"
_PUNCTUATION = ';:,.!?¡¿—…"«»"" '
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_IPA = (
    "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃ"
    "ˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'̩'ᵻ"
)
SYMBOLS = {symbol: index for index, symbol in enumerate(_PAD + _PUNCTUATION + _LETTERS + _IPA)}

_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_MARKS = re.compile(r"[.!?]+")
_CHUNK_END = ".!?,;:"


def chunks(text: str) -> list[str]:
    """The reference's chunks of a text, each ending in punctuation."""
    out: list[str] = []
    for sentence in _SENTENCE_MARKS.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(sentence) <= MAX_CHUNK_CHARS:
            out.append(_end_with_punctuation(sentence))
            continue
        current = ""
        for word in sentence.split():
            if len(current) + len(word) + 1 <= MAX_CHUNK_CHARS:
                current = f"{current} {word}" if current else word
            else:
                if current:
                    out.append(_end_with_punctuation(current))
                current = word
        if current:
            out.append(_end_with_punctuation(current))
    return out


def _end_with_punctuation(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in _CHUNK_END else text + ","


def phonemes(text: str) -> str:
    """espeak-ng's phonemes of a chunk, clause by clause with their punctuation."""
    clauses = espeak.clauses(text, ESPEAK_VOICE)
    return " ".join(clause.phonemes + clause.terminator for clause in clauses)


def ids_of_phonemes(phonemes: str) -> list[int]:
    """Words and punctuation marks joined by single spaces, through the symbol table."""
    spaced = " ".join(_TOKEN.findall(phonemes))
    return [START_ID, *(SYMBOLS[c] for c in spaced if c in SYMBOLS), *END_IDS]


def token_ids(text: str) -> list[int]:
    """The model's input ids for one chunk."""
    return ids_of_phonemes(phonemes(text))


# --- Cleaning ---------------------------------------------------------------------------

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ("", "thousand", "million", "billion", "trillion")
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_CURRENCIES = {"$": "dollar", "€": "euro", "£": "pound", "¥": "yen", "₹": "rupee", "₩": "won"}
_SUFFIX_SCALES = {"K": "thousand", "M": "million", "B": "billion", "T": "trillion"}

_URL = re.compile(r"https?://\S+|www\.\S+")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[a-z]{2,}\b", re.IGNORECASE)
_HTML = re.compile(r"<[^>]+>")
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_CURRENCY = re.compile(rf"([$€£¥₹₩])\s?({_NUMBER})([KMBT])?\b")
_PERCENT = re.compile(rf"(-?{_NUMBER})\s?%")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?:\s?([AaPp])\.?[Mm]\.?)?\b")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_RANGE = re.compile(r"\b(\d+)\s?[-–]\s?(\d+)\b")
_PLAIN_NUMBER = re.compile(rf"(?:(?<!\w)-)?{_NUMBER}")


def number_words(n: int) -> str:
    """An integer in English words: 21 → "twenty-one", 1200 → "twelve hundred"."""
    if n < 0:
        return f"negative {number_words(-n)}"
    if n < 20:
        return _ONES[n]
    if 100 <= n <= 9999 and n % 100 == 0 and n % 1000 != 0:
        return f"{number_words(n // 100)} hundred"
    groups = []
    scale = 0
    while n:
        n, group = divmod(n, 1000)
        if group:
            words = _below_thousand(group)
            groups.append(f"{words} {_SCALES[scale]}".strip() if scale < len(_SCALES) else words)
        scale += 1
    return " ".join(reversed(groups))


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        parts.append(f"{_TENS[tens]}-{_ONES[ones]}" if ones else _TENS[tens])
    elif rest:
        parts.append(_ONES[rest])
    return " ".join(parts)


def decimal_words(raw: str) -> str:
    """ "3.14" → "three point one four" (digits after the point read one by one)."""
    whole, _, fraction = raw.replace(",", "").partition(".")
    negative = whole.startswith("-")
    words = number_words(int(whole.lstrip("-") or "0"))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return f"negative {words}" if negative else words


def ordinal_words(n: int) -> str:
    words = number_words(n)
    head, sep, last = words.rpartition("-") if "-" in words else words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}{sep}{last}"


def _currency(match: re.Match[str]) -> str:
    unit = _CURRENCIES[match.group(1)]
    raw = match.group(2).replace(",", "")
    if match.group(3):
        amount = decimal_words(raw) if "." in raw else number_words(int(raw))
        return f"{amount} {_SUFFIX_SCALES[match.group(3)]} {unit}s"
    whole, _, fraction = raw.partition(".")
    value = int(whole)
    words = f"{number_words(value)} {unit}{'' if value == 1 else 's'}"
    cents = int(fraction[:2].ljust(2, "0")) if fraction else 0
    if cents:
        words += f" and {number_words(cents)} cent{'' if cents == 1 else 's'}"
    return words


def _time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    suffix = f" {match.group(3).lower()} m" if match.group(3) else ""
    if minutes == 0:
        return number_words(hours) + (suffix if suffix else " hundred")
    middle = " oh " if minutes < 10 else " "
    return f"{number_words(hours)}{middle}{number_words(minutes)}{suffix}"


def clean(text: str) -> str:
    """Spelled-out, lowercased text, as the reference's cleaning makes it."""
    text = unicodedata.normalize("NFC", text)
    text = _HTML.sub(" ", text)
    text = _URL.sub("", text)
    text = _EMAIL.sub("", text)
    text = _CURRENCY.sub(_currency, text)
    text = _PERCENT.sub(lambda m: decimal_words(m.group(1)) + " percent", text)
    text = _TIME.sub(_time, text)
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))), text)
    text = _RANGE.sub(
        lambda m: f"{number_words(int(m.group(1)))} to {number_words(int(m.group(2)))}", text
    )
    text = _PLAIN_NUMBER.sub(lambda m: decimal_words(m.group()), text)
    return " ".join(text.lower().split())
