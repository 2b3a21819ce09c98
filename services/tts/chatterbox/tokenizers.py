"""Text to T3's text-token ids, as each Chatterbox variant's reference does it.

- standard (`tokenizer.json`): spaces become the `[SPACE]` token, then the grapheme
  vocabulary of the `tokenizers` file; T3 adds `[START]` / `[STOP]` around the ids;
- multilingual (`grapheme_mtl_merged_expanded_v1.json`): lowercased, NFKD, a language's
  own preparation (Korean syllables into jamo; Chinese into Cangjie codes after word
  segmentation; Japanese kanji into hiragana; Hebrew diacritics; Russian stress marks),
  then `[<lang>]` in front and `[SPACE]` for spaces;
- turbo: GPT-2's byte-level BPE with Chatterbox's added tokens (vocab.json, merges.txt,
  added_tokens.json, as transformers' GPT2TokenizerFast reads them), no start or stop.

Where the reference needs a package for a language (pkuseg, pykakasi, dicta-onnx,
russian-text-stresser) it silently skips that step when the package is missing; here
such a language is refused with the reason instead, so a request never gets the
unprepared text the model was not trained on.
"""

from __future__ import annotations

import importlib.util
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

SPACE = "[SPACE]"
START = "[START]"
STOP = "[STOP]"
TURBO_VOCAB_SIZE = 50276

# The multilingual model's languages (mtl_tts.SUPPORTED_LANGUAGES).
LANGUAGES = {
    "ar": "Arabic", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "ms": "Malay", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "sv": "Swedish",
    "sw": "Swahili", "tr": "Turkish", "zh": "Chinese",
}  # fmt: skip

# What a language's preparation needs beyond this module: (import name, pip name, step).
LANGUAGE_PACKAGES = {
    "zh": ("spacy_pkuseg", "spacy-pkuseg", "Chinese word segmentation"),
    "ja": ("pykakasi", "pykakasi", "kanji to hiragana"),
    "he": ("dicta_onnx", "dicta-onnx", "Hebrew diacritics"),
    "ru": ("russian_text_stresser", "russian-text-stresser", "Russian stress marks"),
}
CANGJIE_FILE = "Cangjie5_TC.json"


_REPLACEMENTS = (
    ("...", ", "), ("…", ", "), (":", ","), (" - ", ", "), (";", ", "), ("—", "-"),
    ("–", "-"), (" ,", ","), ("“", '"'), ("”", '"'), ("‘", "'"), ("’", "'"),
)  # fmt: skip
# Turbo keeps "...", " - " and ";".
_TURBO_KEEPS = ("...", " - ", ";")
_ENDERS = (".", "!", "?", "-", ",")
_CJK_ENDERS = ("、", "，", "。", "？", "！")
EMPTY_TEXT = "You need to add some text for me to talk."


def normalize_punctuation(text: str, variant: str) -> str:
    """The reference's punc_norm for "standard", "multilingual" or "turbo": first letter
    capitalised, whitespace collapsed, unusual punctuation replaced, a full stop added
    when the text ends without one."""
    if not text:
        return EMPTY_TEXT
    if text[0].islower():
        text = text[0].upper() + text[1:]
    text = " ".join(text.split())
    for old, new in _REPLACEMENTS:
        if variant == "turbo" and old in _TURBO_KEEPS:
            continue
        text = text.replace(old, new)
    text = text.rstrip(" ")
    enders = _ENDERS + (_CJK_ENDERS if variant == "multilingual" else ())
    if not text.endswith(enders):
        text += "."
    return text


def _load(path: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:
        raise FailedPrecondition(f"tokenizer {path} does not load: {error}") from error


def _check_specials(tokenizer: Any, path: Path) -> None:
    vocab = tokenizer.get_vocab()
    missing = [token for token in (START, STOP) if token not in vocab]
    if missing:
        raise FailedPrecondition(f"tokenizer {path} lacks {', '.join(missing)}")


class EnTokenizer:
    """The standard model's grapheme tokenizer."""

    def __init__(self, path: Path) -> None:
        self.tokenizer = _load(path)
        _check_specials(self.tokenizer, path)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text.replace(" ", SPACE)).ids
        return ids


def decompose_hangul(text: str) -> str:
    """Korean syllables into their jamo (lead, vowel, optional tail), stripped."""
    out = []
    for char in text:
        if "\uac00" <= char <= "\ud7af":
            base = ord(char) - 0xAC00
            out.append(chr(0x1100 + base // (21 * 28)) + chr(0x1161 + (base % (21 * 28)) // 28))
            if base % 28:
                out.append(chr(0x11A7 + base % 28))
        else:
            out.append(char)
    return "".join(out).strip()


class Cangjie:
    """Chinese characters (Unicode category Lo) to `[cj_x]...[cj_.]` Cangjie codes, a
    homophone's index appended; words segmented by pkuseg first, as the reference."""

    def __init__(self, path: Path, segment: Callable[[str], list[str]]) -> None:
        self.segment = segment
        self.codes: dict[str, str] = {}
        glyphs: dict[str, list[str]] = {}
        for entry in json.loads(path.read_text(encoding="utf-8")):
            word, code = entry.split("\t")[:2]
            self.codes[word] = code
            glyphs.setdefault(code, []).append(word)
        self.glyphs = glyphs

    def __call__(self, text: str) -> str:
        out = []
        for char in " ".join(self.segment(text)):
            code = self.codes.get(char) if unicodedata.category(char) == "Lo" else None
            if code is None:
                out.append(char)
                continue
            index = self.glyphs[code].index(char)
            suffix = str(index) if index > 0 else ""
            out.append("".join(f"[cj_{c}]" for c in code + suffix) + "[cj_.]")
        return "".join(out)


@dataclass
class _Preparers:
    """Language steps that need a package, built on first use."""

    directory: Path
    built: dict[str, Callable[[str], str]]


class MTLTokenizer:
    """The multilingual model's grapheme tokenizer with language ids."""

    def __init__(self, path: Path) -> None:
        self.tokenizer = _load(path)
        _check_specials(self.tokenizer, path)
        self._steps = _Preparers(path.parent, {})

    @staticmethod
    def unavailable(language: str, directory: Path | None = None) -> str | None:
        """Why `language` cannot be prepared here, or None when it can."""
        need = LANGUAGE_PACKAGES.get(language)
        if need is not None and importlib.util.find_spec(need[0]) is None:
            return (
                f"language {language!r} needs {need[2]} from the {need[1]!r} package, "
                "which is not installed"
            )
        if language == "zh" and directory is not None and not (directory / CANGJIE_FILE).exists():
            return f"language 'zh' needs {CANGJIE_FILE} next to the tokenizer"
        return None

    def check(self, language: str) -> None:
        """NotFound when the model has no such language, InvalidArgument when it
        cannot prepare it here."""
        if language not in LANGUAGES:
            raise NotFound(
                f"language {language!r} is not served by the model; it speaks "
                f"{', '.join(LANGUAGES)}"
            )
        reason = self.unavailable(language, self._steps.directory)
        if reason:
            raise InvalidArgument("language", reason)

    def _prepare(self, text: str, language: str) -> str:
        if language == "ko":
            return decompose_hangul(text)
        if language not in LANGUAGE_PACKAGES:
            return text
        step = self._steps.built.get(language)
        if step is None:
            step = self._steps.built[language] = self._build(language)
        return step(text)

    def _build(self, language: str) -> Callable[[str], str]:
        # Only reached once `check` found the package installed.
        if language == "zh":
            from spacy_pkuseg import pkuseg

            return Cangjie(self._steps.directory / CANGJIE_FILE, pkuseg().cut)
        if language == "ja":
            return _hiragana()
        if language == "he":
            from dicta_onnx import Dicta

            return Dicta().add_diacritics  # type: ignore[no-any-return]
        from russian_text_stresser.text_stresser import RussianTextStresser

        return RussianTextStresser().stress_text  # type: ignore[no-any-return]

    def encode(self, text: str, language: str) -> list[int]:
        self.check(language)
        prepared = self._prepare(unicodedata.normalize("NFKD", text.lower()), language)
        ids: list[int] = self.tokenizer.encode(f"[{language}]{prepared}".replace(" ", SPACE)).ids
        return ids


def _hiragana() -> Callable[[str], str]:
    """Kanji phrases to hiragana (a space before a leading は or へ), katakana and the
    rest kept, then NFKD, as the reference's hiragana_normalize."""
    import pykakasi

    kakasi = pykakasi.kakasi()

    def convert(text: str) -> str:
        out = []
        for part in kakasi.convert(text):
            original, hira = part["orig"], part["hira"]
            if any(19968 <= ord(c) <= 40959 for c in original):
                out.append(" " + hira if hira and hira[0] in ("は", "へ") else hira)
            else:
                out.append(original)
        return unicodedata.normalize("NFKD", "".join(out))

    return convert


class TurboTokenizer:
    """GPT-2 BPE with Chatterbox Turbo's added tokens, from the checkpoint's files."""

    def __init__(self, directory: Path, vocab_size: int = TURBO_VOCAB_SIZE) -> None:
        from transformers import GPT2TokenizerFast

        try:
            self.tokenizer = GPT2TokenizerFast.from_pretrained(str(directory))
        except Exception as error:
            raise FailedPrecondition(
                f"turbo tokenizer in {directory} does not load: {error}"
            ) from error
        if len(self.tokenizer) > vocab_size:
            raise FailedPrecondition(
                f"turbo tokenizer in {directory} has {len(self.tokenizer)} tokens, "
                f"more than the model's {vocab_size}"
            )

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer(text, truncation=True).input_ids
        return ids
