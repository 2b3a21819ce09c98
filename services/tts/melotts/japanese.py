"""MeloTTS's Japanese front-end, as its reference has it.

Normalisation: NFKC; grouping commas dropped from numbers, a currency sign read after
its amount ($ ドル, ¥ 円, £ ポンド, € ユーロ), numbers spelled by num2words (ja); then only
hiragana, katakana and CJK ideographs are kept (so every space, Latin letter and
punctuation mark goes), and pykakasi (its legacy converter, kanji and hiragana to
katakana) writes the rest in katakana. The text is cut by the BERT's own tokenizer
(tohoku-nlp/bert-base-japanese-v3's: MeCab with unidic-lite, then WordPiece); each word
of its tokens is read by the reference's kana table, longest match (two characters, then
one) first; a character the table lacks stays as it is (and is then no phone of the
model); the long-vowel mark "ー" reads as nothing. [UNK] reads as the pad "_". All tones
are 0.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

# fugashi and unidic_lite are the BERT tokenizer's MeCab and dictionary: imported here, so
# that a model without them fails to load naming them, before its BERT loads.
import fugashi  # noqa: F401
import pykakasi
import unidic_lite  # noqa: F401
from num2words import num2words

from speechmesh.services.tts.melotts.english_g2p import Phonemes, deal_phones, word_groups
from speechmesh.services.tts.melotts.reading import Tokenize
from speechmesh.services.tts.melotts.splitting import split_cjk
from speechmesh.services.tts.melotts.words import TokenReader

_MARK_ORDER = "!?…,.'-"
"""The reference's punctuation, in its order ("-" last: literal in a character class)."""
PUNCTUATION = frozenset(_MARK_ORDER)
# Kana (one or two characters) = their phones, "+"-joined; the reference's table.
_READINGS = """
アァ=a+a イィ=i+i イェ=i+e イャ=y+a ウゥ=u: エェ=e+e オォ=o: カァ=k+a: キィ=k+i:
クゥ=k+u: クャ=ky+a クュ=ky+u クョ=ky+o ケェ=k+e: コォ=k+o: ガァ=g+a:
ギィ=g+i: グゥ=g+u: グャ=gy+a グュ=gy+u グョ=gy+o ゲェ=g+e: ゴォ=g+o:
サァ=s+a: シィ=sh+i: スゥ=s+u: スャ=sh+a スュ=sh+u スョ=sh+o セェ=s+e:
ソォ=s+o: ザァ=z+a: ジィ=j+i: ズゥ=z+u ズャ=zy+a ズュ=zy+u ズョ=zy+o ゼェ=z+e:
ゾォ=z+o: タァ=t+a: チィ=ch+i: ツァ=ts+a ツィ=ts+i ツゥ=ts+u: ツャ=ch+a
ツュ=ch+u ツョ=ch+o ツェ=ts+e ツォ=ts+o テェ=t+e: トォ=t+o: ダァ=d+a:
ヂィ=j+i: ヅゥ=d+u: ヅャ=zy+a ヅュ=zy+u ヅョ=zy+o デェ=d+e: ドォ=d+o:
ナァ=n+a: ニィ=n+i: ヌゥ=n+u: ヌャ=ny+a ヌュ=ny+u ヌョ=ny+o ネェ=n+e:
ノォ=n+o: ハァ=h+a: ヒィ=h+i: フゥ=f+u フャ=hy+a フュ=hy+u フョ=hy+o ヘェ=h+e:
ホォ=h+o: バァ=b+a: ビィ=b+i: ブゥ=b+u: ブュ=by+u ベェ=b+e: ボォ=b+o:
パァ=p+a: ピィ=p+i: プゥ=p+u: プャ=py+a プュ=py+u プョ=py+o ペェ=p+e:
ポォ=p+o: マァ=m+a: ミィ=m+i: ムゥ=m+u: ムャ=my+a ムュ=my+u ムョ=my+o
メェ=m+e: モォ=m+o: ヤァ=y+a: ユゥ=y+u: ユャ=y+a: ユュ=y+u: ユョ=y+o:
ヨォ=y+o: ラァ=r+a: リィ=r+i: ルゥ=r+u: ルャ=ry+a ルュ=ry+u ルョ=ry+o
レェ=r+e: ロォ=r+o: ワァ=w+a: ヲォ=o: ディ=d+i デャ=dy+a デュ=dy+u デョ=dy+o
ティ=t+i テャ=ty+a テュ=ty+u テョ=ty+o スィ=s+i ズァ=z+u+a ズィ=z+i ズェ=z+e
ズォ=z+o キャ=ky+a キュ=ky+u キョ=ky+o シャ=sh+a シュ=sh+u シェ=sh+e ショ=sh+o
チャ=ch+a チュ=ch+u チェ=ch+e チョ=ch+o トゥ=t+u トャ=ty+a トュ=ty+u トョ=ty+o
ドァ=d+o+a ドゥ=d+u ドャ=dy+a ドュ=dy+u ドョ=dy+o ニャ=ny+a ニュ=ny+u
ニョ=ny+o ヒャ=hy+a ヒュ=hy+u ヒョ=hy+o ミャ=my+a ミュ=my+u ミョ=my+o
リャ=ry+a リュ=ry+u リョ=ry+o ギャ=gy+a ギュ=gy+u ギョ=gy+o ヂェ=j+e ヂャ=j+a
ヂュ=j+u ヂョ=j+o ジェ=j+e ジャ=j+a ジュ=j+u ジョ=j+o ビャ=by+a ビュ=by+u
ビョ=by+o ピャ=py+a ピュ=py+u ピョ=py+o ウァ=u+a ウィ=w+i ウェ=w+e ウォ=w+o
ファ=f+a フィ=f+i フェ=f+e フォ=f+o ヴァ=b+a ヴィ=b+i ヴェ=b+e ヴォ=b+o
ヴュ=by+u ア=a イ=i ウ=u エ=e オ=o カ=k+a キ=k+i ク=k+u ケ=k+e コ=k+o
サ=s+a シ=sh+i ス=s+u セ=s+e ソ=s+o タ=t+a チ=ch+i ツ=ts+u テ=t+e ト=t+o
ナ=n+a ニ=n+i ヌ=n+u ネ=n+e ノ=n+o ハ=h+a ヒ=h+i フ=f+u ヘ=h+e ホ=h+o
マ=m+a ミ=m+i ム=m+u メ=m+e モ=m+o ラ=r+a リ=r+i ル=r+u レ=r+e ロ=r+o
ガ=g+a ギ=g+i グ=g+u ゲ=g+e ゴ=g+o ザ=z+a ジ=j+i ズ=z+u ゼ=z+e ゾ=z+o
ダ=d+a ヂ=j+i ヅ=z+u デ=d+e ド=d+o バ=b+a ビ=b+i ブ=b+u ベ=b+e ボ=b+o
パ=p+a ピ=p+i プ=p+u ペ=p+e ポ=p+o ヤ=y+a ユ=y+u ヨ=y+o ワ=w+a ヰ=i ヱ=e
ヲ=o ン=N ッ=q ヴ=b+u ー= ァ=a ィ=i ゥ=u ェ=e ォ=o ヮ=w+a ャ=y+a ョ=y+o
ュ=y+u 琦=ch+i ヶ=k+e 髙=t+a+k+a 煞=sh+y+a 、=, 。=. ！=! ？=? ・=,
"""
_TABLE = {
    kana: phones.split("+") if phones else []
    for kana, _, phones in (entry.partition("=") for entry in _READINGS.split())
}
_PAIRS = {k: v for k, v in _TABLE.items() if len(k) == 2}
_SINGLES = {k: v for k, v in _TABLE.items() if len(k) == 1}
_GROUPED = re.compile("[0-9]{1,3}(,[0-9]{3})+")
_CURRENCIES = {"$": "ドル", "¥": "円", "£": "ポンド", "€": "ユーロ"}
_CURRENCY = re.compile(r"([$¥£€])([0-9.]*[0-9])")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_JAPANESE = ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x4E00, 0x9FFF), (0x3400, 0x4DBF))
_JAPANESE += ((0x20000, 0x2A6DF),)
_MARKS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": "."}
_MARKS |= {"·": ",", "、": ",", "...": "…"}
_MARKS_RE = re.compile("|".join(re.escape(p) for p in _MARKS))
_OTHERS = re.compile(
    r"[^\u3040-\u309F\u30A0-\u30FF\u4E00-\u9FFF\u3400-\u4DBF" + _MARK_ORDER + r"]+"
)


def read_kana(text: str) -> list[str]:
    text = text.strip()
    phones: list[str] = []
    while text:
        if text[:2] in _PAIRS and len(text) >= 2:
            phones += _PAIRS[text[:2]]
            text = text[2:]
        elif text[0] in _SINGLES:
            phones += _SINGLES[text[0]]
            text = text[1:]
        else:
            phones.append(text[0])
            text = text[1:]
    return phones


def _japanese(character: str) -> bool:
    return any(start <= ord(character) <= end for start, end in _JAPANESE)


class JapaneseReader(TokenReader):
    def __init__(
        self, tokenize: Tokenize, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> None:
        super().__init__(tokenize, symbols, options)
        with warnings.catch_warnings():
            # The reference's converter is pykakasi's legacy API (setMode/getConverter).
            warnings.simplefilter("ignore", DeprecationWarning)
            kakasi = pykakasi.kakasi()
            kakasi.setMode("J", "K")
            kakasi.setMode("H", "K")
            self._converter = kakasi.getConverter()

    def split(self, text: str) -> list[str]:
        return split_cjk(text)

    def normalize(self, piece: str) -> str:
        text = unicodedata.normalize("NFKC", piece)
        text = _GROUPED.sub(lambda m: m[0].replace(",", ""), text)
        text = _CURRENCY.sub(lambda m: m[2] + _CURRENCIES.get(m[1], m[1]), text)
        text = _NUMBER.sub(lambda m: num2words(m[0], lang="ja"), text)
        text = "".join(c for c in text if _japanese(c))
        text = _OTHERS.sub("", _MARKS_RE.sub(lambda m: _MARKS[m.group()], text))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            converted: str = self._converter.do(text)
        return converted

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
                read = read_kana(word)
                phones += read
                word2ph += deal_phones(len(read), len(pieces))
        phones.append("_")
        return Phonemes(phones, [0] * len(phones), [*word2ph, 1])
