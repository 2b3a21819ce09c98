"""The KittenTTS model family (KittenML/kitten-tts-* 0.8), on onnxruntime.

The published layout, read through the files `config.json` names (never hard-coded):

- `config.json`: `type` ("ONNX1" or "ONNX2", read alike), `model_file` (the .onnx),
  `voices` (the .npz), `speed_priors` (speed multiplier per voice id, may be empty),
  `voice_aliases` (display name → voice id, e.g. "Bella" → "expr-voice-2-f");
- the voices file: one float32 array [rows, 256] of style vectors per voice id;
- the model: inputs `input_ids` int64 [1, T], `style` float32 [1, 256], `speed`
  float32 [1]; outputs `waveform` float32 [N] and `duration` int64 [T]; 24 kHz.

Per chunk of text (see kittentts_text): the style row is the chunk's length in
characters (capped at the last row), speed is the request's times the voice's prior,
and the last 5000 samples of the waveform are cut off (the model's trailing
artefact). The model takes one chunk per call, so a batch runs its pieces in turn.
A whole text is cut into pieces (kittentts_text.pieces) only where that leaves the
reference's chunks as they are, so streamed and unary audio are the reference's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from speechmesh.runtime import weights
from speechmesh.runtime.audio import Samples
from speechmesh.runtime.engine import VoiceInfo
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.runtime.text import Piece
from speechmesh.services.tts import kittentts_text
from speechmesh.services.tts.engine import SynthesisParams, Synthesizer

SAMPLE_RATE = 24000
STYLE_SIZE = 256
TRIMMED_SAMPLES = 5000
MODEL_TYPES = ("ONNX1", "ONNX2")
INPUTS = {"input_ids", "style", "speed"}
OUTPUT = "waveform"
DEFAULT_VOICE = "expr-voice-5-m"
LANGUAGES = ("en-US",)


@dataclass(frozen=True)
class KittenSettings:
    voice: str
    speed: float
    clean_text: bool


class KittenTts(Synthesizer):
    family = "kittentts"
    options_field = "kitten_tts"
    # onnxruntime sessions take concurrent runs; espeak-ng is behind its own lock.
    concurrent_batches = True

    session: ort.InferenceSession
    styles: dict[str, np.ndarray]
    aliases: dict[str, str]
    speed_priors: dict[str, float]

    def load(self) -> None:
        if self.config.source is None:
            raise FailedPrecondition(
                f"model {self.config.id!r}: KittenTTS has no embedded default; set source to "
                "a KittenML/kitten-tts-* repo or a folder holding its config.json, .onnx and "
                "voices file"
            )
        folder = weights.resolve(self.config.source, allow_patterns=["config.json"])
        (config_path,) = weights.require_files(folder, ["config.json"])
        config = _read_config(config_path)
        names = [config["model_file"], config["voices"]]
        folder = weights.resolve(self.config.source, allow_patterns=["config.json", *names])
        model_path, voices_path = weights.require_files(folder, names)
        self.styles = _read_styles(voices_path)
        self.aliases = {str(k): str(v) for k, v in (config.get("voice_aliases") or {}).items()}
        self.speed_priors = {
            str(k): float(v) for k, v in (config.get("speed_priors") or {}).items()
        }
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.config.threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if not inputs >= INPUTS or OUTPUT not in outputs:
            raise FailedPrecondition(
                f"{model_path} is not a KittenTTS model: inputs {sorted(inputs)}, outputs "
                f"{sorted(outputs)}; expected inputs {sorted(INPUTS)} and output {OUTPUT!r}"
            )
        kittentts_text.check_phonemizer()  # fails early without espeak-ng
        self.sample_rate_hz = SAMPLE_RATE

    def voices(self) -> tuple[VoiceInfo, ...]:
        names = {voice: alias for alias, voice in self.aliases.items()}
        return tuple(
            VoiceInfo(
                voice,
                names.get(voice, voice),
                LANGUAGES,
                f"KittenTTS voice{f', alias {names[voice]}' if voice in names else ''}",
            )
            for voice in sorted(self.styles)
        )

    @property
    def default_voice(self) -> str:
        return DEFAULT_VOICE if DEFAULT_VOICE in self.styles else min(self.styles)

    def settings(self, params: SynthesisParams) -> KittenSettings:
        voice = self.find_voice(params.voice, self.aliases)
        return KittenSettings(
            voice=voice,
            speed=params.speed * self.speed_priors.get(voice, 1.0),
            clean_text=bool(params.family_options.get("clean_text", False)),
        )

    def pieces(self, text: str, settings: KittenSettings) -> list[Piece]:
        return kittentts_text.pieces(text, settings.clean_text)

    def synthesize(self, text: str, settings: KittenSettings) -> Samples:
        if settings.clean_text:
            text = kittentts_text.clean(text)
        parts = [self._speak(chunk, settings) for chunk in kittentts_text.chunks(text)]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _speak(self, chunk: str, settings: KittenSettings) -> Samples:
        styles = self.styles[settings.voice]
        row = min(len(chunk), len(styles) - 1)
        feeds = {
            "input_ids": np.array([kittentts_text.token_ids(chunk)], np.int64),
            "style": styles[row : row + 1],
            "speed": np.array([settings.speed], np.float32),
        }
        (waveform,) = self.session.run([OUTPUT], feeds)
        audio = np.asarray(waveform, np.float32).reshape(-1)
        return audio[: max(len(audio) - TRIMMED_SAMPLES, 0)]


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FailedPrecondition(f"cannot read KittenTTS config {path}: {error}") from error
    if not isinstance(config, dict):
        raise FailedPrecondition(f"KittenTTS config {path} is not a JSON object")
    if config.get("type") not in MODEL_TYPES:
        raise FailedPrecondition(
            f"KittenTTS config {path} has type {config.get('type')!r}; expected one of "
            f"{list(MODEL_TYPES)}"
        )
    missing = [key for key in ("model_file", "voices") if not isinstance(config.get(key), str)]
    if missing:
        raise FailedPrecondition(f"KittenTTS config {path} lacks {missing}")
    return config


def _read_styles(path: Path) -> dict[str, np.ndarray]:
    """Voice id → float32 [rows, 256]; the file must hold plain arrays (no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            styles = {name: np.asarray(archive[name]) for name in archive.files}
    except (OSError, ValueError) as error:
        raise FailedPrecondition(f"cannot read KittenTTS voices {path}: {error}") from error
    if not styles:
        raise FailedPrecondition(f"KittenTTS voices {path} holds no voice")
    for name, array in styles.items():
        if array.ndim != 2 or array.shape[1] != STYLE_SIZE or array.shape[0] < 1:
            raise FailedPrecondition(
                f"KittenTTS voice {name!r} in {path} has shape {list(array.shape)}; "
                f"expected [rows, {STYLE_SIZE}]"
            )
        styles[name] = array.astype(np.float32, copy=False)
    return styles
