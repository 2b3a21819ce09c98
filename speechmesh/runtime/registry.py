"""Where model families and services are declared: a new family is a folder and one line.

Entries are import paths, resolved only when used, so a VAD pod never imports the
STT family's dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from speechmesh.runtime.errors import FailedPrecondition

if TYPE_CHECKING:
    from speechmesh.runtime.engine import Engine
    from speechmesh.runtime.service import ServiceSpec

FAMILIES: dict[str, str] = {
    "silero-vad": "speechmesh.services.vad.silero:SileroVad",
    "faster-whisper": "speechmesh.services.stt.whisper:FasterWhisper",
    "piper": "speechmesh.services.tts.piper:Piper",
    "kittentts": "speechmesh.services.tts.kittentts:KittenTts",
    "harmonyspeech-synthesizer": "speechmesh.services.tts.harmonyspeech.engine:Synthesizer",
    "harmonyspeech-vocoder": "speechmesh.services.tts.harmonyspeech.engine:Vocoder",
    "indextts2": "speechmesh.services.indextts.engine:IndexTTSEngine",
    "ge2e-resemblyzer": "speechmesh.services.conversion.encoders:ResemblyzerEncoder",
    "harmonyspeech-v1-encoder": "speechmesh.services.conversion.encoders:HarmonySpeechEncoder",
    "rnnoise": "speechmesh.services.conversion.rnnoise:Rnnoise",
    "deepfilternet3": "speechmesh.services.conversion.deepfilternet:DeepFilterNet3",
    "openvoice-v1": "speechmesh.services.conversion.openvoice.engine:OpenVoiceV1",
    "openvoice-v2": "speechmesh.services.conversion.openvoice.engine:OpenVoiceV2",
    "voicefixer": "speechmesh.services.conversion.voicefixer.engine:VoiceFixer",
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
        engine: type[Engine] = _import(FAMILIES[family])
    except ImportError as error:
        raise FailedPrecondition(
            f"model family {family!r} needs a dependency that is not installed: {error.name} "
            "(install the service's extra, e.g. pip install 'speechmesh[vad]')"
        ) from error
    return engine


def service_spec(name: str) -> ServiceSpec:
    """The spec of a service by its config name (vad, stt, ...)."""
    if name not in SERVICES:
        known = ", ".join(sorted(SERVICES))
        raise KeyError(f"no service named {name!r} (available: {known})")
    spec: ServiceSpec = _import(SERVICES[name])
    return spec
