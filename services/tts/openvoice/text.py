"""The base speakers' text front-end as their reference has it: sentence splitting, the
cjke_cleaners2 cleaners (English to IPA, Chinese to IPA through bopomofo) and symbol ids.

Splitting (per language, before anything else):

- both: `。！？；` become `.`, `，` becomes `,`, runs of whitespace one space; a cut
  follows every `, . ! ? ;` — also inside numbers, so "$5.50" is read as "$5. 50";
- English also maps curly quotes to straight ones and deletes `<>()[]"«»`;
- cut sentences are gathered into a piece until it holds more than 10 words (English,
  words split at single spaces) or characters (Chinese); a piece of at most 2 words
  (characters) then joins the next, and a last one that short joins the one before.

Each piece is then read on its own: a space goes between a lower-case letter and the
capital after it ("OpenVoice" → "Open Voice", in Chinese too), the cleaner of its
language runs, "." is appended unless it ends in one of `.,!?-…~`, characters outside
the symbol table are dropped without a word, and with add_blank a blank (id 0) goes
before, between and after the ids (2n + 1 of them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import cn2an
import eng_to_ipa
import jieba
from pypinyin import BOPOMOFO, lazy_pinyin
from unidecode import unidecode

from speechmesh.services.tts.english import expand_abbreviations, spell_numbers

ENGLISH, CHINESE = "EN", "ZH"
PIECE_MIN = 10  # words (English) or characters (Chinese) a piece must exceed
SHORT = 2  # a piece this short joins a neighbour
BLANK = 0
_CUT = "$#!"  # what the reference marks its cuts with; text containing it is cut there too

_FULL_STOPS = re.compile("[。！？；]")
_CURLY_DOUBLE, _CURLY_SINGLE = re.compile("[“”]"), re.compile("[‘’]")
_DELETED = re.compile(r"[<>()\[\]\"«»]+")
_WHITESPACE = re.compile(r"[\n\t ]+")
_CUT_AFTER = re.compile(r"([,.!?;])")
_CAMEL = re.compile(r"([a-z])([A-Z])")
_FINAL_MARK = re.compile(r"([^.,!?\-…~])$")
_TRAILING_SPACE = re.compile(r"\s+$")


def _sentences(text: str, language: str) -> list[str]:
    """The text's cleaned-up sentences, cut after each mark (the last one may lack it)."""
    text = _FULL_STOPS.sub(".", text).replace("，", ",")
    if language == ENGLISH:
        text = _CURLY_SINGLE.sub("'", _CURLY_DOUBLE.sub('"', text))
        text = _DELETED.sub("", text)
    text = _WHITESPACE.sub(" ", text)
    sentences = [s.strip() for s in _CUT_AFTER.sub(rf"\1 {_CUT}", text).split(_CUT)]
    if not sentences[-1]:
        sentences.pop()
    return sentences


def _size(language: str) -> Callable[[str], int]:
    return (lambda s: len(s.split(" "))) if language == ENGLISH else len


def split(text: str, language: str) -> list[str]:
    """The pieces the reference synthesizes one by one, in order (none for empty text)."""
    size = _size(language)
    sentences = _sentences(text, language)
    gathered, current, count = [], [], 0
    for index, sentence in enumerate(sentences):
        current.append(sentence)
        count += size(sentence)
        if count > PIECE_MIN or index == len(sentences) - 1:
            gathered.append(" ".join(current))
            current, count = [], 0
    pieces: list[str] = []
    for piece in gathered:
        if pieces and size(pieces[-1]) <= SHORT:
            pieces[-1] += " " + piece
        else:
            pieces.append(piece)
    if len(pieces) > 1 and size(pieces[-1]) <= SHORT:
        last = pieces.pop()
        pieces[-1] += " " + last
    return pieces


_READABLE = {
    ENGLISH: re.compile("[A-Za-z0-9]"),  # after unidecode: any letter or digit is read
    CHINESE: re.compile("[\u4e00-\u9fffA-Za-z0-9]"),  # Han, Latin letter names, numbers
}


def readable(piece: str, language: str) -> bool:
    """Whether the cleaner turns anything in the piece into speech, not just the "." it
    closes every piece with."""
    if language == ENGLISH:
        piece = unidecode(piece)
    return _READABLE[language].search(piece) is not None


def tidy(piece: str, language: str) -> str:
    """A piece's text as splitting leaves it, without cutting it: a piece that `split`
    made is unchanged, and text cut by another splitter (a stream's) is cleaned up the
    same way."""
    return " ".join(_sentences(piece, language))


def read_numbers(whole: str, language: str) -> str:
    """Numbers in words (English) or Chinese numerals, before splitting can cut them: the
    normalize_numbers option, not the reference's reading. No digit is left, so a piece
    read again is unchanged."""
    return spell_numbers(whole) if language == ENGLISH else _chinese_numbers(whole)


# English: unidecode, lower case, abbreviations, numbers, eng_to_ipa (whose unknown
# words keep their spelling and a "*"), dark l, then the symbol table's spellings.
_DARK_L = re.compile(r"l([^aeiouæɑɔəɛɪʊ ]*(?: |$))")
_IPA_SPELLINGS = (("r", "ɹ"), ("ʤ", "dʒ"), ("ʧ", "tʃ"))
_SPACES = re.compile(r"\s+")


def english_to_ipa(text: str) -> str:
    text = unidecode(text).lower()
    text = expand_abbreviations(text)
    # unidecode has already made "£" into "ps", so spell_numbers' pounds never apply.
    text = spell_numbers(text)
    phonemes = _SPACES.sub(" ", eng_to_ipa.convert(text))
    phonemes = _DARK_L.sub(lambda m: "ɫ" + m.group(1), phonemes)
    for old, new in _IPA_SPELLINGS:
        phonemes = phonemes.replace(old, new)
    return phonemes.replace("...", "…")


# Chinese: numbers in Chinese numerals (cn2an), words (jieba), bopomofo (pypinyin) with
# the first tone marked, Latin letters as bopomofo letter names, then IPA with tone
# arrows. Each table is applied entry by entry, in order.
_LATIN_NAMES = [
    (re.compile(letter, re.IGNORECASE), name)
    for letter, name in [
        ("a", "ㄟˉ"),
        ("b", "ㄅㄧˋ"),
        ("c", "ㄙㄧˉ"),
        ("d", "ㄉㄧˋ"),
        ("e", "ㄧˋ"),
        ("f", "ㄝˊㄈㄨˋ"),
        ("g", "ㄐㄧˋ"),
        ("h", "ㄝˇㄑㄩˋ"),
        ("i", "ㄞˋ"),
        ("j", "ㄐㄟˋ"),
        ("k", "ㄎㄟˋ"),
        ("l", "ㄝˊㄛˋ"),
        ("m", "ㄝˊㄇㄨˋ"),
        ("n", "ㄣˉ"),
        ("o", "ㄡˉ"),
        ("p", "ㄆㄧˉ"),
        ("q", "ㄎㄧㄡˉ"),
        ("r", "ㄚˋ"),
        ("s", "ㄝˊㄙˋ"),
        ("t", "ㄊㄧˋ"),
        ("u", "ㄧㄡˉ"),
        ("v", "ㄨㄧˉ"),
        ("w", "ㄉㄚˋㄅㄨˋㄌㄧㄡˋ"),
        ("x", "ㄝˉㄎㄨˋㄙˋ"),
        ("y", "ㄨㄞˋ"),
        ("z", "ㄗㄟˋ"),
    ]
]
_BOPOMOFO_IPA = [
    ("ㄅㄛ", "p⁼wo"),
    ("ㄆㄛ", "pʰwo"),
    ("ㄇㄛ", "mwo"),
    ("ㄈㄛ", "fwo"),
    ("ㄅ", "p⁼"),
    ("ㄆ", "pʰ"),
    ("ㄇ", "m"),
    ("ㄈ", "f"),
    ("ㄉ", "t⁼"),
    ("ㄊ", "tʰ"),
    ("ㄋ", "n"),
    ("ㄌ", "l"),
    ("ㄍ", "k⁼"),
    ("ㄎ", "kʰ"),
    ("ㄏ", "x"),
    ("ㄐ", "tʃ⁼"),
    ("ㄑ", "tʃʰ"),
    ("ㄒ", "ʃ"),
    ("ㄓ", "ts`⁼"),
    ("ㄔ", "ts`ʰ"),
    ("ㄕ", "s`"),
    ("ㄖ", "ɹ`"),
    ("ㄗ", "ts⁼"),
    ("ㄘ", "tsʰ"),
    ("ㄙ", "s"),
    ("ㄚ", "a"),
    ("ㄛ", "o"),
    ("ㄜ", "ə"),
    ("ㄝ", "ɛ"),
    ("ㄞ", "aɪ"),
    ("ㄟ", "eɪ"),
    ("ㄠ", "ɑʊ"),
    ("ㄡ", "oʊ"),
    ("ㄧㄢ", "jɛn"),
    ("ㄩㄢ", "ɥæn"),
    ("ㄢ", "an"),
    ("ㄧㄣ", "in"),
    ("ㄩㄣ", "ɥn"),
    ("ㄣ", "ən"),
    ("ㄤ", "ɑŋ"),
    ("ㄧㄥ", "iŋ"),
    ("ㄨㄥ", "ʊŋ"),
    ("ㄩㄥ", "jʊŋ"),
    ("ㄥ", "əŋ"),
    ("ㄦ", "əɻ"),
    ("ㄧ", "i"),
    ("ㄨ", "u"),
    ("ㄩ", "ɥ"),
    ("ˉ", "→"),
    ("ˊ", "↑"),
    ("ˇ", "↓↑"),
    ("ˋ", "↓"),
    ("˙", ""),
    ("，", ","),
    ("。", "."),
    ("！", "!"),
    ("？", "?"),
    ("—", "-"),
]
_NUMBER = re.compile(r"\d+(?:\.?\d+)?")
_HAN = re.compile("[\u4e00-\u9fff]")
_UNMARKED_FIRST_TONE = re.compile("([\u3105-\u3129])$")


def _chinese_numbers(text: str) -> str:
    for number in _NUMBER.findall(text):
        text = text.replace(number, cn2an.an2cn(number), 1)
    return text


def _bopomofo(text: str) -> str:
    text = text.replace("、", "，").replace("；", "，").replace("：", "，")
    out = ""
    for word in jieba.lcut(text, cut_all=False):
        if not _HAN.search(word):
            out += word
            continue
        syllables = [_UNMARKED_FIRST_TONE.sub(r"\1ˉ", s) for s in lazy_pinyin(word, BOPOMOFO)]
        out += (" " if out else "") + "".join(syllables)
    return out


def chinese_to_ipa(text: str) -> str:
    text = _bopomofo(_chinese_numbers(text))
    for pattern, name in _LATIN_NAMES:
        text = pattern.sub(name, text)
    for old, new in _BOPOMOFO_IPA:
        text = text.replace(old, new)
    text = re.sub("i([aoe])", r"j\1", text)
    text = re.sub("u([aoəe])", r"w\1", text)
    text = re.sub("([sɹ]`[⁼ʰ]?)([→↓↑ ]+|$)", r"\1ɹ`\2", text).replace("ɻ", "ɹ`")
    return re.sub("([s][⁼ʰ]?)([→↓↑ ]+|$)", r"\1ɹ\2", text)


_MARKED = {
    CHINESE: (re.compile(r"\[ZH\](.*?)\[ZH\]"), chinese_to_ipa),
    ENGLISH: (re.compile(r"\[EN\](.*?)\[EN\]"), english_to_ipa),
}


def clean(piece: str, language: str) -> str:
    """cjke_cleaners2 on one piece: camelCase parted, the piece marked with its language,
    each marked stretch (Chinese first, then English) turned to IPA and a space, the
    end trimmed and closed with "."."""
    text = _CAMEL.sub(r"\1 \2", piece)
    text = f"[{language}]{text}[{language}]"
    for mark in (CHINESE, ENGLISH):
        pattern, to_ipa = _MARKED[mark]
        text = pattern.sub(lambda m, to_ipa=to_ipa: to_ipa(m.group(1)) + " ", text)
    text = _TRAILING_SPACE.sub("", text)
    return _FINAL_MARK.sub(r"\1.", text)


def symbol_ids(cleaned: str, symbols: Sequence[str], add_blank: bool) -> list[int]:
    """Ids of the cleaned text's known symbols (others dropped), blanks interspersed."""
    table = {symbol: index for index, symbol in enumerate(symbols)}
    ids = [table[c] for c in cleaned if c in table]
    if not add_blank:
        return ids
    spaced = [BLANK] * (2 * len(ids) + 1)
    spaced[1::2] = ids
    return spaced
