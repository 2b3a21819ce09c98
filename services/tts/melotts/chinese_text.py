"""MeloTTS's Chinese (mixed with English) text normalisation, as its reference has it
(chinese_mix.text_normalize); its pieces are splitting.split_cjk's (split_sentences_zh).

Normalisation: every number (digits, maybe one decimal point) is read by cn2an in
turn, each replacing the first place its digits occur; 嗯 becomes 恩 and 呣 母; full-width
and bracket punctuation map to the model's marks (quotes and brackets to "'"), "$" to
"."; anything but CJK ideographs (U+4E00..U+9FA5), Latin letters, "_", whitespace and
! ? … , . ' - is dropped, and whitespace runs become one space.
"""

from __future__ import annotations

import re

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


def normalize(text: str) -> str:
    import cn2an

    for number in _NUMBER_RE.findall(text):
        text = text.replace(number, cn2an.an2cn(number), 1)
    text = text.replace("嗯", "恩").replace("呣", "母")
    text = _MARKS_RE.sub(lambda match: _MARKS[match.group()], text)
    text = _DROPPED_RE.sub("", text)
    return re.sub(r"\s+", " ", text)
