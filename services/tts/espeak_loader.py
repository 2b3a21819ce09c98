"""espeak-ng phonemes from the libespeak-ng that the espeakng-loader wheel ships, via ctypes.

KittenTTS's reference runtime phonemizes with this library (espeak-ng 1.52.0 and its
data, as espeakng-loader 0.2.4 builds them), and its phonemes differ in places from
those of the espeak-ng inside the piper-tts wheel (a later build: it writes a
palatal mark `ʲ` where a vowel meets the next word's vowel, "has been" comes out
weakened, ...). So KittenTTS takes its phonemes from here, and Piper from espeak.py.

espeak-ng is GPL-3.0, so the wheel comes with the optional `piper` extra, like
piper-tts. The library is loaded once per process and keeps global state (the current
voice), so every call holds one process-wide lock. The voice is chosen as the
reference's phonemizer chooses it: the first voice espeak-ng lists for the language.
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys
import threading
from pathlib import Path

from speechmesh.runtime.errors import FailedPrecondition

INSTALL_HINT = (
    "KittenTTS phonemization needs the espeakng-loader wheel, which bundles espeak-ng "
    "(GPL-3.0): pip install 'speechmesh[piper]'"
)
# espeak_Initialize's output mode: synchronous, no audio device.
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
# espeak_TextToPhonemes: UTF-8 text in; IPA out with "_" between the phonemes of a word
# (the separator is dropped afterwards; the reference asks for the same output).
_TEXT_UTF8 = 1
_PHONEMES_IPA = 0x02
_PHONEME_SEPARATOR = "_"
PHONEME_MODE = ord(_PHONEME_SEPARATOR) << 8 | _PHONEMES_IPA


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _Library:
    def __init__(self, library: Path, data: Path) -> None:
        self.lib = ctypes.CDLL(str(library))
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self.lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        if self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(), 0) <= 0:
            raise FailedPrecondition(f"espeak-ng at {library} failed to start with data {data}")
        self.voice = ""

    def identifier(self, language: str) -> str:
        """The first listed voice whose main language is `language` (e.g. "en-us")."""
        voices = self.lib.espeak_ListVoices(None)
        index = 0
        while voices[index]:
            voice = voices[index].contents
            # `languages` is a priority byte, the language, a NUL, ...: the first one.
            if (voice.languages or b"")[1:].decode() == language:
                return (voice.identifier or b"").decode()
            index += 1
        raise FailedPrecondition(f"espeak-ng has no voice for language {language!r}")

    def set_language(self, language: str) -> None:
        if self.voice == language:
            return
        identifier = self.identifier(language)
        if self.lib.espeak_SetVoiceByName(identifier.encode()) != 0:
            raise FailedPrecondition(f"espeak-ng cannot load voice {identifier!r}")
        self.voice = language

    def clauses(self, text: str) -> list[str]:
        """espeak-ng's phoneme output, one string per clause (separators still in)."""
        encoded = ctypes.c_char_p(text.encode("utf-8"))
        pointer = ctypes.pointer(encoded)
        out: list[str] = []
        while pointer.contents.value is not None:
            phonemes = self.lib.espeak_TextToPhonemes(pointer, _TEXT_UTF8, PHONEME_MODE)
            if phonemes:
                out.append(phonemes.decode("utf-8"))
        return out


_LOCK = threading.Lock()
_library: _Library | None = None


def clauses(text: str, language: str) -> list[str]:
    """espeak-ng's raw IPA for `text` in `language`, clause by clause: words separated by
    spaces, the phonemes of a word by "_", stress marks kept, punctuation dropped."""
    with _LOCK:
        library = _load()
        library.set_language(language)
        return library.clauses(text)


def check(language: str) -> None:
    """Fails (FailedPrecondition) unless the library loads and speaks `language`."""
    with _LOCK:
        _load().set_language(language)


def _load() -> _Library:
    global _library
    if _library is None:
        _library = _Library(*_locate())
    return _library


def _locate() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("espeakng_loader")
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(f"espeakng-loader is not installed; {INSTALL_HINT}")
    package = Path(next(iter(spec.submodule_search_locations)))
    if sys.platform == "win32":
        name = "espeak-ng.dll"
    elif sys.platform == "darwin":
        name = "libespeak-ng.dylib"
    else:
        name = "libespeak-ng.so"
    library, data = package / name, package / "espeak-ng-data"
    if not library.is_file() or not data.is_dir():
        raise FailedPrecondition(
            f"the espeakng-loader wheel at {package} has no {name} or espeak-ng-data; "
            f"{INSTALL_HINT}"
        )
    return library, data
