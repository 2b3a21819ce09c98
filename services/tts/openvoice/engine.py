"""OpenVoice V1 base speakers (family openvoice-v1-base): one model serves the English
styles and the Chinese speaker, SynthesisOptions.language (en, zh) picking the
language's VITS and `voice` the style (a speaker id from its config).

As the reference's BaseSpeakerTTS.tts: the text is cut by its splitter, each piece is
synthesized with noise_scale 0.667, noise_scale_w 0.6, sdp_ratio 0.2 (OpenVoiceOptions
override them) and length_scale 1 / speed, and int(rate · 0.05 / speed) zeros follow
every piece, the last included. Audio is the decoder's float32, not normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speechmesh.nn.vits.config import Scales
from speechmesh.runtime.audio import Samples
from speechmesh.runtime.engine import VoiceInfo
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from speechmesh.runtime.text import Piece
from speechmesh.runtime.torch_threads import request_threads, use_threads
from speechmesh.services.tts.engine import SynthesisParams, Synthesizer
from speechmesh.services.tts.openvoice import text
from speechmesh.services.tts.openvoice.checkpoint import LANGUAGE_DIRS, SPEAKERS_DIR, load_speakers
from speechmesh.services.tts.openvoice.modules import SynthesizerTrn

LANGUAGE_TAGS = {text.ENGLISH: "en", text.CHINESE: "zh"}
DEFAULTS = {"noise_scale": 0.667, "noise_scale_w": 0.6, "sdp_ratio": 0.2}
SILENCE_S = 0.05
DEFAULT_VOICE = "default"


@dataclass(frozen=True)
class OpenVoiceSettings:
    language: str
    """The language mark, "EN" or "ZH"."""
    speaker: int
    scales: Scales
    silence_samples: int
    noise: torch.Generator
    """One generator per request: pieces draw from it in order."""
    normalize_numbers: bool = False


class OpenVoiceV1Base(Synthesizer):
    family = "openvoice-v1-base"
    options_field = "openvoice"
    controls = frozenset({"seed"})
    default_source = "myshell-ai/OpenVoice"
    hub_patterns = tuple(
        f"{SPEAKERS_DIR}/{folder}/{name}"
        for folder in LANGUAGE_DIRS.values()
        for name in ("config.json", "checkpoint.pth")
    )

    speakers: dict[str, SynthesizerTrn]

    def load(self) -> None:
        request_threads(self.config.threads)
        root = self.hub_files(self.config.source or self.default_source).resolve()
        self.speakers = load_speakers(Path(root), self.config.device)
        rates = {m.config.sampling_rate for m in self.speakers.values()}
        if len(rates) != 1:
            raise FailedPrecondition(f"the base speakers' sampling rates differ: {sorted(rates)}")
        (self.sample_rate_hz,) = rates

    def warmup(self) -> None:
        for language in self.speakers:
            params = SynthesisParams(language=LANGUAGE_TAGS[language], seed=0)
            settings = self.prepare(params)
            self.synthesize("Warming up." if language == text.ENGLISH else "预热。", settings)

    def languages(self) -> tuple[str, ...]:
        return tuple(LANGUAGE_TAGS[language] for language in self.speakers)

    def voices(self) -> tuple[VoiceInfo, ...]:
        styles: dict[str, list[str]] = {}
        for language, model in self.speakers.items():
            for style in model.config.speakers:
                styles.setdefault(style, []).append(LANGUAGE_TAGS[language])
        return tuple(
            VoiceInfo(style, style, tuple(tags), f"OpenVoice V1 base speaker, {style} style")
            for style, tags in styles.items()
        )

    @property
    def default_voice(self) -> str:
        return DEFAULT_VOICE

    def settings(self, params: SynthesisParams) -> OpenVoiceSettings:
        language = self._language(params)
        table = self.speakers[language].config.speakers
        style = params.voice or DEFAULT_VOICE
        if style not in table:
            raise NotFound(
                f"voice {style!r} is not a style of model {self.config.id!r} in "
                f"{LANGUAGE_TAGS[language]!r} (styles: {', '.join(table)})"
            )
        scales = Scales.from_options(params.family_options, DEFAULTS, "openvoice", params.speed)
        noise = torch.Generator()
        if params.seed is None:
            noise.seed()
        else:
            noise.manual_seed(params.seed)
        return OpenVoiceSettings(
            language=language,
            speaker=table[style],
            scales=scales,
            silence_samples=int((self.sample_rate_hz * SILENCE_S) / params.speed),
            noise=noise,
            normalize_numbers=bool(params.family_options.get("normalize_numbers", False)),
        )

    def _language(self, params: SynthesisParams) -> str:
        """The language mark of the request: its language, else the only one offering its
        voice, else English when served."""
        if params.language:
            tag = params.language.lower().split("-")[0]
            return next(mark for mark, t in LANGUAGE_TAGS.items() if t == tag)
        offering = [
            mark
            for mark, model in self.speakers.items()
            if (params.voice or DEFAULT_VOICE) in model.config.speakers
        ]
        if len(offering) == 1:
            return offering[0]
        return text.ENGLISH if text.ENGLISH in self.speakers else next(iter(self.speakers))

    def pieces(self, whole: str, settings: OpenVoiceSettings) -> list[Piece]:
        read = text.read_numbers(whole, settings.language) if settings.normalize_numbers else whole
        pieces = text.split(read, settings.language)
        if not any(text.readable(piece, settings.language) for piece in pieces):
            raise InvalidArgument(
                "text",
                f"has nothing the {LANGUAGE_TAGS[settings.language]!r} speaker can read "
                "(no letter, digit or Chinese character once cleaned up)",
            )
        # Offsets are approximate: the reference's pieces are cleaned-up text.
        found, start = [], 0
        for index, piece in enumerate(pieces):
            end = min(start + len(piece), len(whole))
            found.append(Piece(index, piece, start, end))
            start = min(end + 1, len(whole))
        return found

    def phoneme_ids(self, piece: str, settings: OpenVoiceSettings) -> list[int]:
        """The model input of one piece (as the reference's pieces are, or tidied)."""
        model = self.speakers[settings.language]
        if settings.normalize_numbers:
            piece = text.read_numbers(piece, settings.language)
        cleaned = text.clean(text.tidy(piece, settings.language), settings.language)
        ids = text.symbol_ids(cleaned, model.config.symbols, add_blank=False)
        if not ids:
            raise InvalidArgument(
                "text",
                f"{piece[:40]!r} has nothing the {LANGUAGE_TAGS[settings.language]!r} "
                "speaker can read",
            )
        return text.symbol_ids(cleaned, model.config.symbols, model.config.add_blank)

    def synthesize(self, piece: str, settings: OpenVoiceSettings) -> Samples:
        use_threads()
        ids = self.phoneme_ids(piece, settings)
        model = self.speakers[settings.language]
        with torch.inference_mode():
            audio = model.infer(ids, settings.speaker, settings.scales, settings.noise)
        samples = audio.to(torch.float32).cpu().numpy()
        return np.concatenate([samples, np.zeros(settings.silence_samples, np.float32)])
