"""Speech from two real, clearly different voices, for tests that must tell speakers apart.

The Piper en_US-joe-medium neural voice (a recorded man) and espeak-ng's default English
voice (a formant synthesizer, no recorded speaker at all). espeak-ng is the copy
statically linked into piper-tts's `espeakbridge` module, called through its C API.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
from pathlib import Path

import numpy as np

ESPEAK_SYNCHRONOUS = 2
ESPEAK_POS_CHARACTER = 1
_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _piper_dir() -> Path:
    return Path(next(iter(importlib.util.find_spec("piper").submodule_search_locations)))


class _Espeak:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(str(_piper_dir() / "espeakbridge.so"))
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.rate = self.lib.espeak_Initialize(ESPEAK_SYNCHRONOUS, 0, str(_piper_dir()).encode(), 0)
        self._chunks: list[np.ndarray] = []
        self._callback = _Callback(self._collect)  # kept alive as long as the library uses it
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName(b"en-us")

    def _collect(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def say(self, text: str) -> np.ndarray:
        self._chunks = []
        data = text.encode() + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, ESPEAK_POS_CHARACTER, 0, 0, None, None)
        assert status == 0, f"espeak_Synth failed with {status}"
        return (np.concatenate(self._chunks) / 32768.0).astype(np.float32)


@functools.cache
def _espeak() -> _Espeak:
    return _Espeak()


@functools.cache
def espeak_say(text: str) -> tuple[np.ndarray, int]:
    """`text` in espeak-ng's default American English voice."""
    engine = _espeak()
    return engine.say(text), engine.rate


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
