"""MeloTTS's Chinese (mixed with English) text handling, as its reference has it: the
sentence splitter (split_sentences_zh) and the normalisation (chinese_mix.text_normalize).

Splitting: 。！？； become ".", ， becomes ",", runs of newlines, tabs and spaces one
space; the text is cut after each of , . ! ? ; and cuts are joined again until a piece
holds more than ten characters; a piece of at most two characters joins the next (the
last such joins the one before).

Normalisation: every number (digits, maybe one decimal point) is read by cn2an in
turn, each replacing the first place its digits occur; 嗯 becomes 恩 and 呣 母; full-width
and bracket punctuation map to the model's marks (quotes and brackets to "'"), "$" to
"."; anything but CJK ideographs (U+4E00..U+9FA5), Latin letters, "_", whitespace and
! ? … , . ' - is dropped, and whitespace runs become one space.
"""

from __future__ import annotations

import re

MIN_PIECE = 10
PUNCTUATION = "!?…,.'-"
"""chinese_mix's marks: those the normalised text keeps."""

_MARKS = {
    "：": ",",
    "；": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": ".",
    "·": ",",
    "、": ",",
    "...": "…",
    "$": ".",
    "“": "'",
    "”": "'",
    "‘": "'",
    "’": "'",
    "（": "'",
    "）": "'",
    "(": "'",
    ")": "'",
    "《": "'",
    "》": "'",
    "【": "'",
    "】": "'",
    "[": "'",
    "]": "'",
    "—": "-",
    "～": "-",
    "~": "-",
    "「": "'",
    "」": "'",
}
_MARKS_RE = re.compile("|".join(re.escape(mark) for mark in _MARKS))
_DROPPED_RE = re.compile(r"[^\u4e00-\u9fa5_a-zA-Z\s" + re.escape(PUNCTUATION) + r"]+")
_NUMBER_RE = re.compile(r"\d+(?:\.?\d+)?")
_CUT = "$#!"
"""The reference's cut marker (text holding it is cut there too)."""


def split_chinese(text: str) -> list[str]:
    text = re.sub("[。！？；]", ".", text)
    text = re.sub("[，]", ",", text)
    text = re.sub("[\n\t ]+", " ", text)
    cuts = [s.strip() for s in re.sub("([,.!?;])", r"\1 " + _CUT, text).split(_CUT)]
    if not cuts[-1]:
        cuts.pop()
    joined, held, count = [], [], 0
    for index, cut in enumerate(cuts):
        held.append(cut)
        count += len(cut)
        if count > MIN_PIECE or index == len(cuts) - 1:
            joined.append(" ".join(held))
            held, count = [], 0
    return _merge_short(joined)


def _merge_short(pieces: list[str]) -> list[str]:
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) <= 2:
            merged[-1] = merged[-1] + " " + piece
        else:
            merged.append(piece)
    if len(merged) >= 2 and len(merged[-1]) <= 2:
        merged[-2] = merged[-2] + " " + merged.pop()
    return merged


def normalize(text: str) -> str:
    import cn2an

    for number in _NUMBER_RE.findall(text):
        text = text.replace(number, cn2an.an2cn(number), 1)
    text = text.replace("嗯", "恩").replace("呣", "母")
    text = _MARKS_RE.sub(lambda match: _MARKS[match.group()], text)
    text = _DROPPED_RE.sub("", text)
    return re.sub(r"\s+", " ", text)
