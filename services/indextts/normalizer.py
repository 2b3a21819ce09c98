"""Text normalisation as the IndexTTS-2 release does it before tokenising (zh and en).

WeTextProcessing (`tn`, the normaliser the release uses on Linux) verbalises numbers,
dates, times, money and units. Around it the release protects what its grammars would
mangle, and this module follows the same steps in the same order:

- the language: Chinese grammar for text with a CJK ideograph, with no Latin letter,
  for a bare e-mail address, or with a pinyin syllable carrying a tone digit ("xuan4");
  the English grammar otherwise;
- "what's / it's / there's …" → "… is" (both languages);
- the glossary (`glossary.yaml` beside the checkpoint: term → reading, or term →
  {en: …, zh: …}), longest term first, case-insensitive;
- hyphenated technical terms ("GPT-5-nano") keep their hyphens: "-" → "<H>" before,
  "<H>" (and the spaces the grammar puts around it) → "-" after;
- Chinese only: tone-numbered pinyin and "中文·中文" names are swapped for placeholders
  and put back afterwards, the pinyin with j/q/x + u/ü spelt v and upper-cased;
- punctuation folded to the marks the BPE model knows (Chinese also maps "$" to ".").

The Chinese grammar is compiled with interjections and erhua kept (the release's
options); compiling takes about 15 s once, the result is cached on disk.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import re
import threading
from pathlib import Path
from typing import Any

import yaml

from speechmesh.runtime.errors import FailedPrecondition

PUNCTUATION = {
    "：": ",",
    "；": ",",
    ";": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": " ",
    "·": "-",
    "、": ",",
    "...": "…",
    ",,,": "…",
    "，，，": "…",
    "……": "…",
    "“": "'",
    "”": "'",
    '"': "'",
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
    ":": ",",
}
ZH_PUNCTUATION = {"$": ".", **PUNCTUATION}


def _alternation(table: dict[str, str]) -> re.Pattern[str]:
    # In the table's order, not longest first: "，" wins over "，，，" as in the release.
    return re.compile("|".join(re.escape(k) for k in table))


_FOLD = _alternation(PUNCTUATION)
_ZH_FOLD = _alternation(ZH_PUNCTUATION)
_CONTRACTION = re.compile(r"(what|where|who|which|how|t?here|it|s?he|that|this)'s", re.IGNORECASE)
_PINYIN = re.compile(
    r"(?<![a-z])((?:[bpmfdtnlgkhjqxzcsryw]|[zcs]h)?(?:[aeiouüv]|[ae]i|u[aio]|ao|ou|i[aue]"
    r"|[uüv]e|[uvü]ang?|uai|[aeiuv]n|[aeio]ng|ia[no]|i[ao]ng)|ng|er)([1-5])",
    re.IGNORECASE,
)
_NAME = re.compile(r"[\u4e00-\u9fff]+(?:[-·—][\u4e00-\u9fff]+){1,2}")
_TECH_TERM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+")
_EMAIL = re.compile(r"^[a-zA-Z0-9]+@[a-zA-Z0-9]+\.[a-zA-Z]+$")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[a-zA-Z]")
_HYPHEN_MARK = re.compile(r"\s*<H>\s*")
_JQX_U = re.compile(r"([jqx])[uü](n|e|an)*(\d)", re.IGNORECASE)


def fold_punctuation(text: str) -> str:
    """The release's last step alone (used to prepare text for training a BPE model)."""
    return _FOLD.sub(lambda m: PUNCTUATION[m.group()], text)


def uses_chinese(text: str) -> bool:
    if _HAN.search(text) or not _LATIN.search(text) or _EMAIL.match(text):
        return True
    return bool(_PINYIN.search(text))


def read_glossary(path: Path | None) -> dict[str, Any]:
    """The checkpoint's glossary.yaml (absent: none); a malformed one is refused."""
    if path is None or not path.is_file():
        return {}
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise FailedPrecondition(f"{path} is not valid YAML: {error}") from error
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise FailedPrecondition(f"{path} must map terms to readings")
    return body


class TextNormalizer:
    def __init__(self, glossary: dict[str, Any] | None = None, cache: Path | None = None):
        try:
            from tn.chinese.normalizer import Normalizer as Chinese
            from tn.english.normalizer import Normalizer as English
        except ImportError as error:
            raise FailedPrecondition(
                "IndexTTS-2 normalises text with WeTextProcessing: install speechmesh[indextts]"
                f" ({error})"
            ) from error
        folder = cache or default_cache()
        folder.mkdir(parents=True, exist_ok=True)
        # One process compiles the grammar; the others wait for it and read the cache.
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._zh = Chinese(
                    cache_dir=str(folder),
                    remove_interjections=False,
                    remove_erhua=False,
                    overwrite_cache=False,
                )
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._en = English(overwrite_cache=False)
        self._glossary = dict(glossary or {})
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        with self._lock:  # pynini's FST composition is not shared across threads
            if uses_chinese(text):
                return self._chinese(text)
            return self._english(text)

    def _chinese(self, text: str) -> str:
        text = _CONTRACTION.sub(r"\1 is", text)
        text = self._apply_glossary(text, "zh")
        text, terms = _protect_terms(text.rstrip())
        text, pinyin = _protect(text, _PINYIN, "pinyin")
        text, names = _protect(text, _NAME, "n")
        try:
            out = self._zh.normalize(text)
        except Exception:  # the release speaks nothing for text its grammar rejects
            out = ""
        out = _restore(out, names, "n")
        out = _restore(out, [_spell_pinyin(p) for p in pinyin], "pinyin")
        if terms:
            out = _HYPHEN_MARK.sub("-", out)
        return _ZH_FOLD.sub(lambda m: ZH_PUNCTUATION[m.group()], out)

    def _english(self, text: str) -> str:
        text = _CONTRACTION.sub(r"\1 is", text)
        try:
            text = self._apply_glossary(text, "en")
            protected, terms = _protect_terms(text)
            out = self._en.normalize(protected)
            if terms:
                out = _HYPHEN_MARK.sub("-", out)
        except Exception:  # the release keeps such text as it is
            out = text
        return _FOLD.sub(lambda m: PUNCTUATION[m.group()], out)

    def _apply_glossary(self, text: str, lang: str) -> str:
        for term in sorted(self._glossary, key=len, reverse=True):
            reading = self._glossary[term]
            if isinstance(reading, dict):
                reading = reading.get(lang, term)
            # The reading is a substitution template, as in the release.
            text = re.sub(re.escape(term), str(reading), text, flags=re.IGNORECASE)
        return text


def default_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    try:
        version = importlib.metadata.version("WeTextProcessing")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Path(root) / "speechmesh" / "indextts-tn" / version


def _protect_terms(text: str) -> tuple[str, list[str]]:
    terms = sorted(set(_TECH_TERM.findall(text)), key=len, reverse=True)
    for term in terms:
        text = text.replace(term, term.replace("-", "<H>"))
    return text, terms


def _protect(text: str, pattern: re.Pattern[str], tag: str) -> tuple[str, list[str]]:
    found = list(dict.fromkeys(m.group(0) for m in pattern.finditer(text)))
    for i, item in enumerate(found):
        text = text.replace(item, f"<{tag}_{chr(ord('a') + i)}>")
    return text, found


def _restore(text: str, items: list[str], tag: str) -> str:
    for i, item in enumerate(items):
        text = text.replace(f"<{tag}_{chr(ord('a') + i)}>", item)
    return text


def _spell_pinyin(pinyin: str) -> str:
    """j/q/x + u or ü is written v ("ju4" → "JV4"), upper-cased; others stay as typed."""
    if pinyin[0] not in "jqxJQX":
        return pinyin
    return _JQX_U.sub(r"\g<1>v\g<2>\g<3>", pinyin).upper()
