"""MeloTTS's gruut reading of one word, shared by its Spanish and French front-ends.

As the reference's phonemizer wrapper (gruut with its eSpeak-derived lexicons, stress
kept, "g" written "ɡ"): the word is cut at runs of punctuation (; : , . ! ? ¡ ¿ — … " « »
“ ” and the spaces around them), each run remembered with where it stood (at the start,
the end or between two parts); each part is read by gruut sentence by sentence, a word's
phonemes flattened to characters, words joined by a space, a gruut break (its own
punctuation) glued to the word before; then the runs are put back where they stood.
The reader keeps one character per phone, spaces dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import gruut

PUNCTUATION = ';:,.!?¡¿—…"«»“”'
_RUNS = re.compile(rf"(\s*[{re.escape(PUNCTUATION)}]+\s*)+")


class Where(Enum):
    START = 0
    END = 1
    BETWEEN = 2


@dataclass(frozen=True)
class Run:
    marks: str
    where: Where


def _cut(text: str) -> tuple[list[str], list[Run]]:
    """The text's parts between punctuation runs, and the runs."""
    matches = list(_RUNS.finditer(text))
    if not matches:
        return [text], []
    if len(matches) == 1 and matches[0].group() == text:
        return [], [Run(text, Where.BETWEEN)]
    runs = []
    for match in matches:
        where = Where.BETWEEN
        if match is matches[0] and text.startswith(match.group()):
            where = Where.START
        elif match is matches[-1] and text.endswith(match.group()):
            where = Where.END
        runs.append(Run(match.group(), where))
    parts: list[str] = []
    rest = text
    for index, run in enumerate(runs):
        # As the reference: the rest is cut at every occurrence of the run's marks.
        first, *others = rest.split(run.marks)
        parts.append(first)
        rest = run.marks.join(others)
        if index == len(runs) - 1 and rest:
            parts.append(rest)
    while parts and parts[0] == "":
        parts = parts[1:]
    return parts, runs


def _put_back(parts: list[str], runs: list[Run]) -> list[str]:
    if not runs:
        return parts
    if not parts:
        return ["".join(run.marks for run in runs)]
    run, others = runs[0], runs[1:]
    if run.where is Where.START:
        return _put_back([run.marks + parts[0], *parts[1:]], others)
    if run.where is Where.END:
        return [parts[0] + run.marks, *_put_back(parts[1:], others)]
    if len(parts) == 1:
        return _put_back([parts[0] + run.marks], others)
    return _put_back([parts[0] + run.marks + parts[1], *parts[2:]], others)


class GruutReader:
    def __init__(self, language: str) -> None:
        if not gruut.is_language_supported(language):
            raise ValueError(f"gruut has no {language} (install gruut[{language[:2]}])")
        self.language = language

    def _phonemize(self, text: str) -> str:
        words: list[list[str]] = []
        for sentence in gruut.sentences(text, lang=self.language, espeak=True):
            for word in sentence:
                if word.is_break:
                    if words:
                        words[-1].append(word.text)
                    else:
                        words.append([word.text])
                elif word.phonemes:
                    characters = [c for p in word.phonemes for c in p.replace("g", "ɡ")]
                    if characters:
                        words.append(characters)
        return " ".join("".join(characters) for characters in words)

    def __call__(self, word: str) -> str:
        """The word's IPA, punctuation kept, as the reference's phonemize(word, "")."""
        parts, runs = _cut(word.strip())
        phonemized = [self._phonemize(part) for part in parts]
        return _put_back(phonemized, runs)[0]
