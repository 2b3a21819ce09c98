"""Where model families and services are declared: a new family is a folder and one line.

Entries are import paths, resolved only when used, so a VAD pod never imports the
STT family's dependencies.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from speechmesh.runtime.errors import FailedPrecondition

if TYPE_CHECKING:
    from speechmesh.runtime.engine import Engine
    from speechmesh.runtime.service import ServiceSpec


@dataclass(frozen=True)
class Family:
    """A model family's one line: where its engine is, and the extras that install it."""

    engine: str
    """Import path of the engine class, "module:Class"."""
    extras: str
    """The pip extras its dependencies come with, comma-separated ("tts,piper")."""


FAMILIES: dict[str, Family] = {
    "silero-vad": Family("speechmesh.services.vad.silero:SileroVad", "vad"),
    "faster-whisper": Family("speechmesh.services.stt.whisper:FasterWhisper", "stt"),
    "piper": Family("speechmesh.services.tts.piper:Piper", "tts,piper"),
    "kittentts": Family("speechmesh.services.tts.kittentts:KittenTts", "tts,piper"),
    "harmonyspeech-synthesizer": Family(
        "speechmesh.services.tts.harmonyspeech.engine:HarmonySynthesizer", "tts,harmonyspeech"
    ),
    "harmonyspeech-vocoder": Family(
        "speechmesh.services.tts.harmonyspeech.engine:HarmonyVocoder", "tts,harmonyspeech"
    ),
    "openvoice-v1-base": Family(
        "speechmesh.services.tts.openvoice.engine:OpenVoiceV1Base", "tts,openvoice"
    ),
    "melotts": Family("speechmesh.services.tts.melotts.engine:MeloTts", "tts,melotts"),
    "chatterbox": Family("speechmesh.services.tts.chatterbox.engine:Chatterbox", "tts,chatterbox"),
    "chatterbox-turbo": Family(
        "speechmesh.services.tts.chatterbox.engine:ChatterboxTurbo", "tts,chatterbox"
    ),
    "chatterbox-multilingual": Family(
        "speechmesh.services.tts.chatterbox.engine:ChatterboxMultilingual", "tts,chatterbox"
    ),
    "indextts2": Family("speechmesh.services.indextts.engine:IndexTTSEngine", "indextts"),
    "ge2e-resemblyzer": Family(
        "speechmesh.services.conversion.encoder.ge2e.engine:ResemblyzerEncoder", "conversion"
    ),
    "harmonyspeech-v1-encoder": Family(
        "speechmesh.services.conversion.encoder.ge2e.engine:HarmonySpeechEncoder", "conversion"
    ),
    "rnnoise": Family("speechmesh.services.conversion.restoration.rnnoise:Rnnoise", "conversion"),
    "deepfilternet3": Family(
        "speechmesh.services.conversion.restoration.deepfilternet:DeepFilterNet3", "conversion"
    ),
    "openvoice-v1": Family(
        "speechmesh.services.conversion.conversion.openvoice.engine:OpenVoiceV1", "conversion"
    ),
    "openvoice-v2": Family(
        "speechmesh.services.conversion.conversion.openvoice.engine:OpenVoiceV2", "conversion"
    ),
    "voicefixer": Family(
        "speechmesh.services.conversion.restoration.voicefixer.engine:VoiceFixer", "conversion"
    ),
    "chatterbox-vc": Family(
        "speechmesh.services.conversion.conversion.chatterbox.engine:ChatterboxVC", "conversion"
    ),
}

SERVICES: dict[str, str] = {
    "vad": "speechmesh.services.vad.service:SERVICE",
    "stt": "speechmesh.services.stt.service:SERVICE",
    "gateway": "speechmesh.gateway.service:SERVICE",
    "tts": "speechmesh.services.tts.service:SERVICE",
    "indextts": "speechmesh.services.indextts.service:SERVICE",
    "conversion": "speechmesh.services.conversion.service:SERVICE",
}


def _import(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def engine_class(family: str) -> type[Engine]:
    """The engine class of a family; FailedPrecondition when unknown or not installed."""
    if family not in FAMILIES:
        known = ", ".join(sorted(FAMILIES))
        raise FailedPrecondition(f"unknown model family {family!r} (known: {known})")
    try:
        engine: type[Engine] = _import(FAMILIES[family].engine)
    except ImportError as error:
        raise FailedPrecondition(
            f"model family {family!r} needs a dependency that is not installed: {error.name} "
            f"(install it with pip install 'speechmesh[{FAMILIES[family].extras}]')"
        ) from error
    return engine


def service_spec(name: str) -> ServiceSpec:
    """The spec of a service by its config name (vad, stt, ...)."""
    if name not in SERVICES:
        known = ", ".join(sorted(SERVICES))
        raise KeyError(f"no service named {name!r} (available: {known})")
    spec: ServiceSpec = _import(SERVICES[name])
    return spec
