"""espeak-ng phonemes, from the espeak-ng library that the piper-tts wheel bundles.

espeak-ng is GPL-3.0, so it is an optional extra (`pip install 'speechmesh[piper]'`):
speechmesh itself stays Apache-2.0, and only an installation that adds the extra
carries GPL code. The wheel's compiled bridge (`piper/espeakbridge*.so`) and its
`espeak-ng-data` are located through importlib and loaded on their own, without
running piper's Python package. espeak-ng keeps global state (the current voice), so
every call holds one process-wide lock.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from speechmesh.runtime.errors import FailedPrecondition

INSTALL_HINT = (
    "espeak-ng phonemization needs the piper-tts wheel, which bundles espeak-ng "
    "(GPL-3.0): pip install 'speechmesh[piper]'"
)

_LOCK = threading.Lock()
_bridge: ModuleType | None = None


@dataclass(frozen=True)
class Clause:
    """What espeak-ng makes of one clause of the text."""

    phonemes: str
    """IPA with stress marks; words separated by spaces."""
    terminator: str
    """The punctuation that ended the clause (".", ",", "?", ...), or ""."""
    ends_sentence: bool


def clauses(text: str, voice: str) -> list[Clause]:
    """The clauses of `text` as espeak-ng voice `voice` (e.g. "en-us") speaks them."""
    bridge = _load()
    with _LOCK:
        bridge.set_voice(voice)
        return [Clause(*clause) for clause in bridge.get_phonemes(text)]


def _load() -> ModuleType:
    global _bridge
    with _LOCK:
        if _bridge is None:
            _bridge = _import_bridge()
        return _bridge


def _import_bridge() -> ModuleType:
    spec = importlib.util.find_spec("piper")
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(f"piper-tts is not installed; {INSTALL_HINT}")
    package = Path(next(iter(spec.submodule_search_locations)))
    data = package / "espeak-ng-data"
    candidates = [
        package / f"espeakbridge{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES
    ]
    library = next((path for path in candidates if path.is_file()), None)
    if library is None or not data.is_dir():
        raise FailedPrecondition(
            f"the piper-tts wheel at {package} has no espeak-ng bridge or data; {INSTALL_HINT}"
        )
    loader = importlib.machinery.ExtensionFileLoader("espeakbridge", str(library))
    module_spec = importlib.util.spec_from_loader("espeakbridge", loader)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    loader.exec_module(module)
    module.initialize(str(data))
    return module
