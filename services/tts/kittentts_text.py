"""KittenTTS's text front-end: optional cleaning, chunking, and phonemes to token ids.

As the reference runtime (KittenML/KittenTTS 0.8) does it:
- cleaning (off by default): the text normalized (NFC), HTML tags, URLs and e-mail
  addresses dropped, contractions expanded, numbers spelled out in their many forms
  (IP addresses, currency, percentages, scientific notation, times, ordinals, units,
  scale suffixes, fractions, decades, phone numbers, ranges, version names, plain
  numbers), lowercased, whitespace collapsed; see `clean`;
- chunks: the (cleaned) text split at every run of `.`, `!` and `?` (which are
  dropped), sentences longer than 400 characters packed into chunks of whole words,
  and every chunk made to end in punctuation (a "," is appended when it does not);
- phonemes: the chunk's punctuation marks (`;:,.!?¡¿—…"«»“”(){}[]` with the spaces
  around them) are lifted out, each stretch of text between them goes to espeak-ng
  (en-us, stress marks kept) on its own, and the marks are put back where they were;
- tokens: those phonemes split into words and single marks joined by single spaces,
  each character mapped through the model's symbol table (unknown ones dropped),
  wrapped as `[0] + ids + [10, 0]`.

`pieces` cuts a whole text for the service where that changes none of the chunks, so
each piece is synthesized (and streamed) on its own and the audio stays the same.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from speechmesh.runtime.text import Piece
from speechmesh.services.tts import espeak_loader

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


# --- Phonemes ---------------------------------------------------------------------------

# The marks kept through phonemization; a run of them with the whitespace around it is
# one unit, put back verbatim.
KEPT_MARKS = ';:,.!?¡¿—…"«»“”(){}[]'
_MARK_RUN = re.compile(rf"(?:\s*[{re.escape(KEPT_MARKS)}]+\s*)+")


def phonemes(text: str) -> str:
    """A chunk's phonemes as the reference's phonemizer writes them: every word followed
    by a space, the punctuation marks (and the spaces around them) in place."""
    runs = list(_MARK_RUN.finditer(text))
    if len(runs) == 1 and runs[0].group() == text:
        return text  # nothing but marks: they stand alone
    stretches: list[str] = []
    start = 0
    for run in runs:
        stretches.append(text[start : run.start()])
        start = run.end()
    stretches.append(text[start:])
    spoken = [_spoken(stretch) for stretch in stretches if stretch]
    return _put_back(spoken, runs, text)


def _spoken(stretch: str) -> str:
    """espeak-ng's phonemes of a stretch of text without kept marks, each word + " "."""
    line = " ".join(espeak_loader.clauses(stretch, ESPEAK_VOICE))
    line = line.strip().replace("\n", " ").replace("  ", " ")
    line = re.sub(r"_+", "_", line).replace("_ ", " ")
    if not line:
        return ""
    return "".join(word.strip().replace("_", "") + " " for word in line.split(" "))


def _put_back(spoken: list[str], runs: list[re.Match[str]], text: str) -> str:
    """The phonemized stretches with the mark runs back between them, as the reference
    restores them: a run at the start is glued before the first stretch, one at the end
    after the last (then a space, unless the run ends in one), one inside joins the
    stretches around it; a word's closing space is dropped before a run."""
    if not spoken:
        return "".join(run.group() for run in runs)
    lines: list[str] = []
    for index, run in enumerate(runs):
        mark = run.group()
        if spoken[0].endswith(" "):
            spoken[0] = spoken[0][:-1]
        if index == 0 and run.start() == 0:
            spoken[0] = mark + spoken[0]
        elif index == len(runs) - 1 and run.end() == len(text):
            lines.append(spoken.pop(0) + mark + ("" if mark.endswith(" ") else " "))
        elif len(spoken) == 1:
            spoken[0] += mark
        else:
            first = spoken.pop(0)
            spoken[0] = first + mark + spoken[0]
    lines += [line if line.endswith(" ") else line + " " for line in spoken]
    return lines[0] if lines else ""


def ids_of_phonemes(phonemes: str) -> list[int]:
    """Words and punctuation marks joined by single spaces, through the symbol table."""
    spaced = " ".join(_TOKEN.findall(phonemes))
    return [START_ID, *(SYMBOLS[c] for c in spaced if c in SYMBOLS), *END_IDS]


def token_ids(text: str) -> list[int]:
    """The model's input ids for one chunk."""
    return ids_of_phonemes(phonemes(text))


def check_phonemizer() -> None:
    """Fails (FailedPrecondition) unless espeak-ng can phonemize for KittenTTS."""
    espeak_loader.check(ESPEAK_VOICE)


# --- Pieces for the service -------------------------------------------------------------

_SENTENCE_CUT = re.compile(r"[.!?]+(?=\s)")
# A group of sentences that still matches no run of chunks past this size ends the search.
MAX_GROUP_CHARS = 2000


def pieces(text: str, clean_text: bool) -> list[Piece]:
    """The text cut into sentences, grouped so that the chunks of each group (cleaned on
    its own) follow one another exactly as the chunks of the whole text do: synthesized
    piece by piece, they give the reference's audio. Where no such grouping is found,
    the rest of the text (or all of it) is one piece."""
    prepare: Callable[[str], str] = clean if clean_text else _unchanged
    wanted = chunks(prepare(text))
    spans = _sentence_spans(text)
    cuts: list[tuple[int, int]] = []
    done = 0  # chunks of `wanted` covered by `cuts`
    first = 0  # the first sentence not in `cuts`
    for last, (_, end) in enumerate(spans):
        start = spans[first][0]
        got = chunks(prepare(text[start:end]))
        if got and got == wanted[done : done + len(got)]:
            cuts.append((start, end))
            done += len(got)
            first = last + 1
        elif end - start > MAX_GROUP_CHARS:
            break
    end = spans[-1][1]
    if first < len(spans):
        if chunks(prepare(text[spans[first][0] : end])) or not cuts:
            cuts.append((spans[first][0], end))
        else:  # a tail with nothing to say (say, "...") joins the last piece
            cuts[-1] = (cuts[-1][0], end)
    if [chunk for start, stop in cuts for chunk in chunks(prepare(text[start:stop]))] != wanted:
        cuts = [(spans[0][0], end)]
    return [Piece(index, text[start:stop], start, stop) for index, (start, stop) in enumerate(cuts)]


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each stretch of text between sentence marks that whitespace
    follows, without the whitespace around it."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_CUT.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    stripped = []
    for begin, end in spans:
        piece = text[begin:end]
        left = len(piece) - len(piece.lstrip())
        right = len(piece.rstrip())
        if right > left:
            stripped.append((begin + left, begin + right))
    return stripped or [(0, 0)]


def _unchanged(text: str) -> str:
    return text


# --- Cleaning ---------------------------------------------------------------------------

_ONES = (
    "",
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
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_DIGITS = ("zero", *_ONES[1:10])
# Groups of three digits are named up to trillions; the reference drops any higher group.
_SCALES = ("", "thousand", "million", "billion", "trillion")
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "four": "fourth",
    "five": "fifth",
    "six": "sixth",
    "seven": "seventh",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_CURRENCIES = {
    "$": "dollar",
    "€": "euro",
    "£": "pound",
    "¥": "yen",
    "₹": "rupee",
    "₩": "won",
    "₿": "bitcoin",
}
_SUFFIX_SCALES = {"K": "thousand", "M": "million", "B": "billion", "T": "trillion"}
_UNITS = {
    "km": "kilometers",
    "kg": "kilograms",
    "mg": "milligrams",
    "ml": "milliliters",
    "gb": "gigabytes",
    "mb": "megabytes",
    "kb": "kilobytes",
    "tb": "terabytes",
    "hz": "hertz",
    "khz": "kilohertz",
    "mhz": "megahertz",
    "ghz": "gigahertz",
    "mph": "miles per hour",
    "kph": "kilometers per hour",
    "ms": "milliseconds",
    "ns": "nanoseconds",
    "µs": "microseconds",
    "°c": "degrees Celsius",
    "c°": "degrees Celsius",
    "°f": "degrees Fahrenheit",
    "f°": "degrees Fahrenheit",
}
_DECADES = (
    "hundreds",
    "tens",
    "twenties",
    "thirties",
    "forties",
    "fifties",
    "sixties",
    "seventies",
    "eighties",
    "nineties",
)


def number_words(n: int) -> str:
    """An integer in English words: 21 → "twenty-one", 1200 → "twelve hundred",
    2500 → "two thousand five hundred"."""
    if n == 0:
        return "zero"
    if n < 0:
        return f"negative {number_words(-n)}"
    if 100 <= n <= 9999 and n % 100 == 0 and n % 1000 != 0 and n // 100 < 20:
        return f"{_ONES[n // 100]} hundred"
    groups = []
    for scale in _SCALES:
        n, group = divmod(n, 1000)
        if group:
            words = _below_thousand(group)
            groups.append(f"{words} {scale}" if scale else words)
        if n == 0:
            break
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
    """A number as written ("-3.10", "12", ".5") in words, the digits after the point
    read one by one: "negative three point one zero"."""
    negative = raw.startswith("-")
    body = raw[1:] if negative else raw
    if "." in body:
        whole, fraction = body.split(".", 1)
        words = number_words(int(whole)) if whole else "zero"
        words += " point " + " ".join(_DIGITS[int(d)] for d in fraction)
    else:
        words = number_words(int(body))
    return f"negative {words}" if negative else words


def _float_words(raw: str) -> str:
    """A decimal number read after a round trip through a float, as the reference reads
    percentages and units: "3.50" → "three point five". Where Python writes that float
    in exponent form (the reference fails there), the digits are read as written."""
    shortest = repr(float(raw))
    return decimal_words(raw if "e" in shortest or "n" in shortest else shortest)


def _amount_words(raw: str) -> str:
    return decimal_words(raw) if "." in raw else number_words(int(raw))


def ordinal_words(n: int) -> str:
    """The ordinal of an integer as the reference forms it: only the last word changes
    ("twenty-first", "one hundredth"); irregular ones from a table, else a final "t"
    takes "h", a final "e" becomes "th", anything else takes "th" ("twentyth")."""
    words = number_words(n)
    joiner = "-" if "-" in words else " "
    head, _, last = words.rpartition(joiner)
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("t"):
        last += "h"
    elif last.endswith("e"):
        last = last[:-1] + "th"
    else:
        last += "th"
    return f"{head}{joiner}{last}" if head else last


def _spelled_digits(digits: str) -> str:
    return " ".join(_DIGITS[int(d)] for d in digits)


# The steps, in the reference's order. Each pattern is applied to the whole text.
_HTML = re.compile(r"<[^>]+>")
_URL = re.compile(r"https?://\S+|www\.\S+")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[a-z]{2,}\b", re.IGNORECASE)
# Contractions, tried in this order (case-insensitively).
_CONTRACTIONS = [
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\bcan't\b", "cannot"),
        (r"\bwon't\b", "will not"),
        (r"\bshan't\b", "shall not"),
        (r"\bain't\b", "is not"),
        (r"\blet's\b", "let us"),
        (r"\b(\w+)n't\b", r"\1 not"),
        (r"\b(\w+)'re\b", r"\1 are"),
        (r"\b(\w+)'ve\b", r"\1 have"),
        (r"\b(\w+)'ll\b", r"\1 will"),
        (r"\b(\w+)'d\b", r"\1 would"),
        (r"\b(\w+)'m\b", r"\1 am"),
        (r"\bit's\b", "it is"),
    )
]
_IP_ADDRESS = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
_NEGATIVE_LEADING_POINT = re.compile(r"(?<!\d)-\.(\d)")
_LEADING_POINT = re.compile(r"(?<!\d)\.(\d)")
_CURRENCY = re.compile(r"([$€£¥₹₩₿])\s*([\d,]+(?:\.\d+)?)\s*([KMBT])?(?![a-zA-Z\d])")
_PERCENT = re.compile(r"(-?[\d,]+(?:\.\d+)?)\s*%")
_SCIENTIFIC = re.compile(r"(?<![a-zA-Z\d])(-?\d+(?:\.\d+)?)[eE]([+-]?\d+)(?![a-zA-Z\d])")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(am|pm)?\b", re.IGNORECASE)
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_UNIT = re.compile(
    r"(\d+(?:\.\d+)?)\s*"
    r"(km|kg|mg|ml|gb|mb|kb|tb|hz|khz|mhz|ghz|mph|kph|°[cCfF]|[cCfF]°|ms|ns|µs)\b",
    re.IGNORECASE,
)
_SCALE_SUFFIX = re.compile(r"(?<![a-zA-Z])(\d+(?:\.\d+)?)\s*([KMBT])(?![a-zA-Z\d])")
_FRACTION = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")
_DECADE = re.compile(r"\b(\d{1,3})0s\b")
_PHONE_NUMBERS = [
    re.compile(r"(?<!\d-)(?<!\d)\b(\d{1,2})-(\d{3})-(\d{3})-(\d{4})\b(?!-\d)"),
    re.compile(r"(?<!\d-)(?<!\d)\b(\d{3})-(\d{3})-(\d{4})\b(?!-\d)"),
    re.compile(r"(?<!\d-)\b(\d{3})-(\d{4})\b(?!-\d)"),
]
_RANGE = re.compile(r"(?<!\w)(\d+)-(\d+)(?!\w)")
_VERSION_NAME = re.compile(r"\b([a-zA-Z][a-zA-Z0-9]*)-(\d[\d.]*)(?=[^\d.]|$)")
# A bare number: digits and commas (a trailing comma included), maybe a fraction; a
# minus sign only where no letter comes before it.
_NUMBER = re.compile(r"(?<![a-zA-Z])-?[\d,]+(?:\.\d+)?")
_SPACES = re.compile(r"\s+")


def _currency(match: re.Match[str]) -> str:
    unit = _CURRENCIES[match.group(1)]
    raw = match.group(2).replace(",", "")
    suffix = match.group(3)
    if not raw.strip("."):
        return match.group()  # only commas: nothing to read (the reference fails)
    if suffix:
        return f"{_amount_words(raw)} {_SUFFIX_SCALES[suffix]} {unit}s".strip()
    if "." in raw:
        whole, fraction = raw.split(".", 1)
        cents = int(fraction[:2].ljust(2, "0"))
        # Always plural before cents, as the reference has it ("one dollars and ...").
        words = f"{number_words(int(whole or '0'))} {unit}s"
        if cents:
            words += f" and {number_words(cents)} cent{'' if cents == 1 else 's'}"
        return words
    value = int(raw)
    return f"{number_words(value)} {unit}{'' if value == 1 else 's'}"


def _percent(match: re.Match[str]) -> str:
    raw = match.group(1).replace(",", "")
    if not raw.strip("-"):
        return match.group()  # only commas (the reference fails)
    words = _float_words(raw) if "." in raw else number_words(int(raw))
    return f"{words} percent"


def _scientific(match: re.Match[str]) -> str:
    exponent = int(match.group(2))
    sign = "negative " if exponent < 0 else ""
    return f"{_amount_words(match.group(1))} times ten to the {sign}{number_words(abs(exponent))}"


def _time(match: re.Match[str]) -> str:
    hours = number_words(int(match.group(1)))
    minutes = int(match.group(2))
    half = match.group(4)
    suffix = f" {half.lower()}" if half else ""
    if minutes == 0:
        return f"{hours}{suffix}" if half else f"{hours} hundred"
    if minutes < 10:
        return f"{hours} oh {number_words(minutes)}{suffix}"
    return f"{hours} {number_words(minutes)}{suffix}"


def _unit(match: re.Match[str]) -> str:
    raw, unit = match.group(1), match.group(2)
    words = _float_words(raw) if "." in raw else number_words(int(raw))
    return f"{words} {_UNITS.get(unit.lower(), unit)}"


def _fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator == 0:
        return match.group()
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = ordinal_words(denominator) + ("" if numerator == 1 else "s")
    return f"{number_words(numerator)} {name}"


def _decade(match: re.Match[str]) -> str:
    tens = int(match.group(1))  # 198 for "1980s"
    name = _DECADES[tens % 10]
    return name if tens < 10 else f"{number_words(tens // 10)} {name}"


def _number(match: re.Match[str]) -> str:
    raw = match.group().replace(",", "")
    try:
        if "." in raw:
            return decimal_words(raw)
        # Through a float, as the reference reads it: integers past 2**53 round.
        return number_words(int(float(raw)))
    except (ValueError, OverflowError):
        return match.group()


def clean(text: str) -> str:
    """The text as the reference's cleaning (its TextPreprocessor as KittenTTS sets it
    up: punctuation kept) leaves it: spelled out, lowercased, single-spaced."""
    text = unicodedata.normalize("NFC", text)
    text = _HTML.sub(" ", text)
    text = _URL.sub("", text).strip()
    text = _EMAIL.sub("", text).strip()
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = _IP_ADDRESS.sub(lambda m: " dot ".join(map(_spelled_digits, m.groups())), text)
    text = _NEGATIVE_LEADING_POINT.sub(r"-0.\1", text)
    text = _LEADING_POINT.sub(r"0.\1", text)
    text = _CURRENCY.sub(_currency, text)
    text = _PERCENT.sub(_percent, text)
    text = _SCIENTIFIC.sub(_scientific, text)
    text = _TIME.sub(_time, text)
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))), text)
    text = _UNIT.sub(_unit, text)
    text = _SCALE_SUFFIX.sub(
        lambda m: f"{_amount_words(m.group(1))} {_SUFFIX_SCALES[m.group(2)]}", text
    )
    text = _FRACTION.sub(_fraction, text)
    text = _DECADE.sub(_decade, text)
    for pattern in _PHONE_NUMBERS:
        text = pattern.sub(lambda m: " ".join(map(_spelled_digits, m.groups())), text)
    text = _RANGE.sub(
        lambda m: f"{number_words(int(m.group(1)))} to {number_words(int(m.group(2)))}", text
    )
    text = _VERSION_NAME.sub(r"\1 \2", text)
    text = _NUMBER.sub(_number, text)
    return _SPACES.sub(" ", text.lower()).strip()
