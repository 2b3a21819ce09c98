"""MeloTTS's Chinese-with-English grapheme-to-phoneme step (the ZH model's ZH_MIX_EN
front-end), as its reference has it.

The normalised text is cut after every mark (! ? … , . ' -), each part into runs of Latin
letters and whitespace (English) and the rest (Chinese). An English run is cut by the
BERT tokenizer and read by the English g2p, unpadded, its tones moved up by seven (the
English tones' offset). A Chinese run is cut into words by jieba (parts of speech
included), merged and changed by the tone sandhi (chinese_sandhi.py), and read syllable
by syllable: pypinyin's initial and final (strict initials, neutral tone 5) make a
toneless syllable, respelled as the reference does (uei → ui, iou → iu, uen → un after an
initial; i → yi, u → wu, v → yu, ... without one), which data/opencpop-strict.txt
turns into phones, each carrying the syllable's tone; a mark is its own phone, tone 0.
word2ph holds each syllable's and each English token's phone count; "_" pads both ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from speechmesh.services.tts.melotts import chinese_sandhi, chinese_text
from speechmesh.services.tts.melotts.chinese_text import PUNCTUATION
from speechmesh.services.tts.melotts.english_g2p import EnglishG2p, Phonemes, space_camel_case
from speechmesh.services.tts.melotts.reading import Reading, Tokenize, english_lexicon
from speechmesh.services.tts.melotts.splitting import split_cjk

TABLE_FILE = Path(__file__).parent / "data" / "opencpop-strict.txt"
ENGLISH_TONE_OFFSET = 7
"""symbols.py's tone start of EN: English tones inside Chinese sit above Chinese ones."""
MARKS = PUNCTUATION + "¿¡"
"""The marks a Chinese run may hold (symbols.py's punctuation)."""
_AFTER_MARK = re.compile(r"(?<=[" + re.escape(PUNCTUATION) + r"])\s*")
_ENGLISH = re.compile(r"[a-zA-Z\s]+")
_CHINESE = re.compile(r"[\u4e00-\u9fa5]")
_AFTER_INITIAL = {"uei": "ui", "iou": "iu", "uen": "un"}
_ALONE = {"ing": "ying", "i": "yi", "in": "yin", "u": "wu"}
_ALONE_FIRST = {"v": "yu", "e": "e", "i": "y", "u": "w"}


@cache
def syllable_table() -> dict[str, list[str]]:
    """Toneless pinyin syllable → its phones."""
    table = {}
    for line in TABLE_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            syllable, phones = line.split("\t")
            table[syllable] = phones.split(" ")
    return table


def _spell(initial: str, final: str) -> str:
    """The table's spelling of a syllable from pypinyin's strict initial and final."""
    if initial:
        return initial + _AFTER_INITIAL.get(final, final)
    if final in _ALONE:
        return _ALONE[final]
    if final and final[0] in _ALONE_FIRST:
        return _ALONE_FIRST[final[0]] + final[1:]
    return final


class ChineseMixG2p:
    def __init__(self, tokenize: Tokenize, english: EnglishG2p) -> None:
        self.tokenize, self.english = tokenize, english

    def __call__(self, text: str) -> Phonemes:
        """The phonemes of a normalised text; ValueError naming what cannot be read."""
        phones, tones, word2ph = ["_"], [0], [1]
        for sentence in _AFTER_MARK.split(text):
            if not sentence.strip():
                continue
            for run in _runs(sentence):
                if _ENGLISH.fullmatch(run):
                    read = self.english.read(self.tokenize(run))
                    read_tones = [t + ENGLISH_TONE_OFFSET for t in read.tones]
                else:
                    read = self._chinese(run)
                    read_tones = read.tones
                phones += read.phones
                tones += read_tones
                word2ph += read.word2ph
        return Phonemes([*phones, "_"], [*tones, 0], [*word2ph, 1])

    def _chinese(self, run: str) -> Phonemes:
        import jieba.posseg
        from pypinyin import Style, lazy_pinyin

        unreadable = {c for c in run if not _CHINESE.match(c) and c not in MARKS}
        if unreadable:
            raise ValueError(f"characters {''.join(sorted(unreadable))!r} have no reading")
        phones: list[str] = []
        tones: list[int] = []
        word2ph: list[int] = []
        table = syllable_table()
        for word, pos in chinese_sandhi.merge(jieba.posseg.lcut(run)):
            initials = lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS)
            finals = chinese_sandhi.change_tones(word, pos, chinese_sandhi.finals_of(word))
            for initial, final in zip(initials, finals, strict=False):
                if initial == final:
                    if initial not in MARKS:
                        raise ValueError(f"{initial!r} has no reading")
                    read, tone = [initial], 0
                else:
                    syllable = _spell(initial, final[:-1])
                    if final[-1:] not in list("12345") or syllable not in table:
                        raise ValueError(f"{word!r} reads as {initial + final!r}, not pinyin")
                    read, tone = table[syllable], int(final[-1])
                phones += read
                tones += [tone] * len(read)
                word2ph.append(len(read))
        return Phonemes(phones, tones, word2ph)


def _runs(sentence: str) -> list[str]:
    """English runs (letters and whitespace) and the Chinese between them, in order."""
    return [run for run in re.split(r"([a-zA-Z\s]+)", sentence) if run]


class ChineseReader:
    """The ZH model's front-end (the reference's ZH_MIX_EN): the Chinese splitter;
    camelCase spaced, the text normalised (chinese_text.py) and read by ChineseMixG2p,
    English runs cut by the BERT tokenizer."""

    def __init__(
        self, tokenize: Tokenize, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> None:
        self.g2p = ChineseMixG2p(tokenize, EnglishG2p(english_lexicon(options), symbols))

    def split(self, text: str) -> list[str]:
        return split_cjk(text)

    def normalize(self, piece: str) -> str:
        return chinese_text.normalize(space_camel_case(piece))

    def read(self, piece: str) -> Reading:
        normalized = self.normalize(piece)
        return Reading(normalized, self.g2p(normalized))
