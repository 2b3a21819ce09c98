"""MeloTTS's sentence splitting (TTS.split_sentences_into_pieces): split_latin for EN, FR
and ES, split_cjk for the others. split_latin: CJK sentence marks become Latin ones,
curly quotes straight, brackets, angle quotes and double quotes are dropped, then text
is cut into chunks of about 256 characters (at most 512) at sentence ends, or at
". , ! ?" followed by a space, as its txtsplit does; a chunk of punctuation only is
dropped.
"""

from __future__ import annotations

import re

DESIRED, MAXIMUM = 256, 512


def split_latin(text: str) -> list[str]:
    text = re.sub("[。！？；]", ".", text)
    text = re.sub("[，]", ",", text)
    text = re.sub("[“”]", '"', text)
    text = re.sub("[‘’]", "'", text)
    text = re.sub(r"[\<\>\(\)\[\]\"\«\»]+", "", text)
    return [item.strip() for item in _chunks(text) if item.strip()]


class _Cursor:
    """txtsplit's walk over the text: a position, the chunk so far, the quote state."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.current, self.in_quote = text, -1, "", False
        self.end = len(text) - 1

    def seek(self, delta: int) -> str:
        for _ in range(abs(delta)):
            if delta < 0:
                self.pos -= 1
                self.current = self.current[:-1]
            else:
                self.pos += 1
                self.current += self.text[self.pos]
            if self.text[self.pos] == '"':
                self.in_quote = not self.in_quote
        return self.text[self.pos]

    def peek(self, delta: int) -> str:
        # As the reference: the text's last character never counts as a next one.
        at = self.pos + delta
        return self.text[at] if 0 <= at < self.end else ""


def _chunks(text: str) -> list[str]:
    text = re.sub(r"\n\n+", "\n", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"([,.?!])", r"\1 ", text)
    text = re.sub(r"\s+", " ", text)
    cursor, chunks, splits = _Cursor(text), [], []

    def commit() -> None:
        chunks.append(cursor.current)
        cursor.current = ""
        splits.clear()

    while cursor.pos < cursor.end:
        c = cursor.seek(1)
        if len(cursor.current) >= MAXIMUM:
            if splits and len(cursor.current) > DESIRED / 2:
                cursor.seek(-(cursor.pos - splits[-1]))
            else:
                while c not in "!?.\n " and cursor.pos > 0 and len(cursor.current) > DESIRED:
                    c = cursor.seek(-1)
            commit()
        elif not cursor.in_quote and (c in "!?\n" or (c in ".," and cursor.peek(1) in "\n ")):
            while (
                cursor.pos < len(text) - 1
                and len(cursor.current) < MAXIMUM
                and cursor.peek(1) in "!?."
            ):
                c = cursor.seek(1)
            splits.append(cursor.pos)
            if len(cursor.current) >= DESIRED:
                commit()
        elif cursor.in_quote and cursor.peek(1) == '"' and cursor.peek(2) in "\n ":
            cursor.seek(2)
            splits.append(cursor.pos)
    chunks.append(cursor.current)
    stripped = [chunk.strip() for chunk in chunks]
    return [c for c in stripped if c and not re.match(r"^[\s\.,;:!?]*$", c)]


def split_cjk(text: str, min_len: int = 10) -> list[str]:
    """split_sentences_zh (every language but EN, FR, ES): CJK sentence marks become Latin
    ones, whitespace one space; the text is cut after each ", . ! ? ;", and the cuts are
    joined (with a space) until a piece is over min_len characters; then a piece of two
    characters or fewer is joined to the next, and a last one so short to the one before."""
    text = re.sub("[。！？；]", ".", text)
    text = re.sub("[，]", ",", text)
    text = re.sub("[\n\t ]+", " ", text)
    text = re.sub("([,.!?;])", r"\1 $#!", text)
    cuts = [s.strip() for s in text.split("$#!")]
    if not cuts[-1]:
        del cuts[-1]
    joined, current, count = [], [], 0
    for index, cut in enumerate(cuts):
        current.append(cut)
        count += len(cut)
        if count > min_len or index == len(cuts) - 1:
            joined.append(" ".join(current))
            current, count = [], 0
    merged: list[str] = []
    for piece in joined:
        if merged and len(merged[-1]) <= 2:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    if len(merged) >= 2 and len(merged[-1]) <= 2:
        last = merged.pop()
        merged[-1] = f"{merged[-1]} {last}"
    return merged
