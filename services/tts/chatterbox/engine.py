"""Chatterbox families: `chatterbox` (standard), `chatterbox-turbo` and
`chatterbox-multilingual`, loading the official ResembleAI layouts.

A request speaks with its own voice: `reference_audio` (encoded in the model thread,
cached by digest) or the repository's built-in voice (`conds.pt`, voice "default").
Voices live in the request's settings, never on the model, so one batch holds pieces
of many requests with different voices: T3 generates all of their speech tokens in
one backbone call per step and S3Gen renders them as one batch.

As the reference's generate(): the text is punc_norm'ed and tokenized per variant;
T3 samples with ChatterboxOptions (defaults: the variant's); standard drops tokens
≥ 6561, Turbo also appends three silence tokens and renders with two flow steps. A
seeded request draws T3's samples and then S3Gen's noise from one generator, in that
order, as the reference does from torch's global one after torch.manual_seed. The
reference's Perth watermark is not applied. Synthesize reads the whole text as one
sequence (whole_text_unary), as the reference; streams go sentence by sentence, or,
with ChatterboxOptions.stream_chunk_tokens = N, within a sentence: every N tokens T3
makes, S3Gen renders the sentence so far (speechmesh/nn/chatterbox/s3gen/streaming.py)
and the new audio goes to the job's sink from the batch's thread. Such a piece's S3Gen
draws from its own generator, seeded from a copy of the request's at the piece's start,
so T3 draws what it would without chunks and the same seed repeats the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from speechmesh.nn.chatterbox.s3gen import (
    MULTILINGUAL_FILE,
    SILENCE_TOKEN,
    STANDARD_FILE,
    TURBO_FILE,
    Row,
    S3Gen,
    load_s3gen,
)
from speechmesh.nn.chatterbox.s3gen.streaming import SentenceStream
from speechmesh.runtime import weights
from speechmesh.runtime.audio import Samples
from speechmesh.runtime.engine import VoiceInfo
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from speechmesh.runtime.numbers import number_option
from speechmesh.runtime.torch_threads import request_threads, use_threads
from speechmesh.services.tts.chatterbox import tokenizers, voices
from speechmesh.services.tts.chatterbox.t3 import config as t3_config
from speechmesh.services.tts.chatterbox.t3.conditioning import T3Conditionals
from speechmesh.services.tts.chatterbox.t3.config import SPEECH_VOCAB, START_SPEECH, STOP_SPEECH
from speechmesh.services.tts.chatterbox.t3.generation import Sampling, T3Job, generate
from speechmesh.services.tts.chatterbox.t3.model import T3
from speechmesh.services.tts.chatterbox.voice_encoder import VoiceEncoder
from speechmesh.services.tts.engine import SynthesisJob, SynthesisParams, Synthesizer

DEFAULT_VOICE = "default"
CONDS_FILE = "conds.pt"
SAMPLE_RATE = 24000
# ChatterboxOptions fields: bounds, and which variants take them.
GUIDED_ONLY = ("cfg_weight", "exaggeration", "min_p")
TURBO_ONLY = ("top_k",)
SIZES_OPTION = "sizes"
MAX_TOKENS_OPTION = "max_new_tokens"
CHUNK_OPTION = "stream_chunk_tokens"
MIN_CHUNK_TOKENS = 4  # more than S3Gen's 3-token lookahead, which a chunk holds back


@dataclass(frozen=True)
class Variant:
    name: str
    t3: t3_config.T3Config
    t3_file: str
    ve_file: str
    s3gen_file: str
    tokenizer_files: tuple[str, ...]
    defaults: Sampling
    extra_files: tuple[str, ...] = ()


STANDARD = Variant(
    "standard", t3_config.STANDARD, "t3_cfg.safetensors", "ve.safetensors", STANDARD_FILE,
    ("tokenizer.json",), Sampling(repetition_penalty=1.2),
)  # fmt: skip
MULTILINGUAL = Variant(
    "multilingual", t3_config.MULTILINGUAL, "t3_mtl23ls_v2.safetensors", "ve.pt",
    MULTILINGUAL_FILE, ("grapheme_mtl_merged_expanded_v1.json",),
    Sampling(repetition_penalty=2.0), extra_files=(tokenizers.CANGJIE_FILE,),
)  # fmt: skip
TURBO = Variant(
    "turbo", t3_config.TURBO, "t3_turbo_v1.safetensors", "ve.safetensors", TURBO_FILE,
    ("tokenizer_config.json",),
    Sampling(temperature=0.8, cfg_weight=0.0, repetition_penalty=1.2, min_p=0.0, top_p=0.95),
    extra_files=("vocab.json", "merges.txt", "tokenizer.json", "added_tokens.json",
                 "special_tokens_map.json"),
)  # fmt: skip


@dataclass
class ChatterboxSettings:
    sampling: Sampling
    exaggeration: float
    language: str
    generator: torch.Generator
    """One per request: T3's draws, then S3Gen's, piece after piece."""
    reference: tuple[Samples, int] | None = None
    """The request's reference clip (samples, rate), encoded in the model thread."""
    reference_key: str = ""
    voice: voices.Voice | None = field(default=None, repr=False)
    chunk_tokens: int = 0
    """Streams: audio every this many speech tokens within a sentence; 0: by sentence."""


class ChatterboxBase(Synthesizer):
    variant: ClassVar[Variant]
    options_field = "chatterbox"
    controls = frozenset({"seed", "reference_audio"})
    whole_text_unary = True
    max_piece_chars = 300

    ve: VoiceEncoder
    t3: T3
    s3gen: S3Gen
    tokenizer: Any
    builtin: voices.Voice | None
    cache: voices.VoiceCache

    @classmethod
    def required_files(cls) -> list[str]:
        v = cls.variant
        return [v.t3_file, v.ve_file, v.s3gen_file, *v.tokenizer_files]

    def t3_config(self) -> t3_config.T3Config:
        """The official T3 sizes, or those of options.sizes ({backbone config keys...,
        "text_vocab": n}: the attention heads are not in the checkpoint's shapes) for
        derived or test models; options.max_new_tokens caps the speech tokens."""
        t3 = self.variant.t3
        sizes = dict(self.config.options.get(SIZES_OPTION) or {})
        text_vocab = sizes.pop("text_vocab", None)
        if sizes:
            t3 = t3.with_backbone(**sizes)
        if text_vocab is not None:
            t3 = replace(t3, text_vocab=int(text_vocab))
        limit = self.config.options.get(MAX_TOKENS_OPTION)
        if limit is not None:
            if not isinstance(limit, int) or limit < 1:
                raise FailedPrecondition(f"options.{MAX_TOKENS_OPTION} must be a positive integer")
            t3 = replace(t3, max_new_tokens=limit)
        return t3

    def load(self) -> None:
        request_threads(self.config.threads)
        known = {SIZES_OPTION, MAX_TOKENS_OPTION}
        unknown = sorted(set(self.config.options) - known)
        if unknown:
            raise FailedPrecondition(
                f"options: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        root = Path(self.hub_files(self.config.source or self.default_source).resolve())
        files = weights.require_files(root, self.required_files())
        t3_path, ve_path, s3gen_path = files[:3]
        t3_sizes = self.t3_config()
        device = self.config.device
        self.ve = VoiceEncoder()
        weights.load_strict(self.ve, weights.load_state_dict(ve_path))
        self.ve.to(device).eval()
        self.t3 = T3(t3_sizes)
        self.t3.load(t3_path)
        self.t3.to(device).eval()
        # S3Gen's sizes are read from its checkpoint's shapes.
        self.s3gen = load_s3gen(s3gen_path, None, device)
        if self.s3gen.config.meanflow != (self.variant is TURBO):
            kind = "a meanflow" if self.s3gen.config.meanflow else "not a meanflow"
            raise FailedPrecondition(
                f"{s3gen_path.name} is {kind} S3Gen; only Turbo's is (and must be) one"
            )
        self.tokenizer = self._tokenizer(root, t3_sizes)
        conds = root / CONDS_FILE
        self.builtin = voices.from_conds(weights.load_state_dict(conds)) if conds.exists() else None
        self.cache = voices.VoiceCache()
        self.sample_rate_hz = SAMPLE_RATE

    def _tokenizer(self, root: Path, sizes: t3_config.T3Config) -> Any:
        if self.variant is TURBO:
            return tokenizers.TurboTokenizer(root, sizes.text_vocab)
        if self.variant is MULTILINGUAL:
            return tokenizers.MTLTokenizer(root / self.variant.tokenizer_files[0])
        return tokenizers.EnTokenizer(root / self.variant.tokenizer_files[0])

    def warmup(self) -> None:
        if self.builtin is not None:
            self.synthesize("Warming up.", self.prepare(SynthesisParams(seed=0)))

    def languages(self) -> tuple[str, ...]:
        return tuple(tokenizers.LANGUAGES) if self.variant is MULTILINGUAL else ("en",)

    def voices(self) -> tuple[VoiceInfo, ...]:
        if self.builtin is None:
            return ()
        return (
            VoiceInfo(
                DEFAULT_VOICE,
                DEFAULT_VOICE,
                self.languages(),
                "the repository's built-in voice (conds.pt)",
            ),
        )

    @property
    def default_voice(self) -> str:
        return DEFAULT_VOICE

    # ------------------------------------------------------------------ options

    def _sampling(self, options: dict[str, Any]) -> tuple[Sampling, float]:
        variant = self.variant.name
        for name in options:
            if (variant == "turbo" and name in GUIDED_ONLY) or (
                variant != "turbo" and name in TURBO_ONLY
            ):
                raise InvalidArgument(
                    f"chatterbox.{name}", f"is not an option of Chatterbox {variant} models"
                )
        field_name = "chatterbox.{}".format

        def get(name: str, default: float, **bounds: float) -> float:
            if name not in options:
                return default
            return number_option(options[name], field_name(name), **bounds)

        d = self.variant.defaults
        sampling = Sampling(
            temperature=get("temperature", d.temperature, above=0.0),
            cfg_weight=get("cfg_weight", d.cfg_weight, at_least=0.0, at_most=1.0),
            repetition_penalty=get("repetition_penalty", d.repetition_penalty, at_least=1.0),
            min_p=get("min_p", d.min_p, at_least=0.0, at_most=1.0),
            top_p=get("top_p", d.top_p, at_least=0.0, at_most=1.0),
            top_k=int(options.get("top_k", d.top_k)),
        )
        exaggeration = get("exaggeration", 0.5, at_least=0.0, at_most=2.0)
        return sampling, exaggeration

    def settings(self, params: SynthesisParams) -> ChatterboxSettings:
        if params.speed != 1.0:
            raise InvalidArgument("speed", f"model {self.config.id!r} has no speed control")
        if params.voice and params.voice != DEFAULT_VOICE:
            known = DEFAULT_VOICE if self.builtin is not None else "none; send reference_audio"
            raise NotFound(
                f"voice {params.voice!r} is not a voice of model {self.config.id!r} "
                f"(known: {known})"
            )
        sampling, exaggeration = self._sampling(dict(params.family_options))
        language = "en"
        if self.variant is MULTILINGUAL:
            language = (params.language or "en").lower().split("-")[0]
            self.tokenizer.check(language)
        generator = torch.Generator(device=self.config.device)
        if params.seed is None:
            generator.seed()
        else:
            generator.manual_seed(params.seed)
        settings = ChatterboxSettings(sampling, exaggeration, language, generator)
        settings.chunk_tokens = self._chunk_tokens(params)
        if params.reference_audio is not None:
            settings.reference = self._check_reference(params.reference_audio)
            settings.reference_key = voices.digest(*settings.reference) + self.variant.name
        elif self.builtin is None:
            raise InvalidArgument(
                "reference_audio",
                f"model {self.config.id!r} has no built-in voice ({CONDS_FILE}); "
                "send a reference clip",
            )
        return settings

    def _chunk_tokens(self, params: SynthesisParams) -> int:
        value = params.family_options.get(CHUNK_OPTION)
        if not value:
            return 0
        name = f"chatterbox.{CHUNK_OPTION}"
        if not params.stream:
            raise InvalidArgument(
                name,
                "streams audio within a sentence: StreamingSynthesize and BidiSynthesize "
                "take it; Synthesize renders the text whole (leave it unset or 0)",
            )
        cap = self.t3.config.max_new_tokens
        if not MIN_CHUNK_TOKENS <= value <= cap:
            raise InvalidArgument(
                name,
                f"must be 0 (by sentence) or {MIN_CHUNK_TOKENS} to {cap} (this model's cap "
                f"on speech tokens) for Chatterbox {self.variant.name}, got {value}",
            )
        return int(value)

    def _check_reference(self, audio: Any) -> tuple[Samples, int]:
        samples = np.asarray(audio.samples, np.float32)
        rate = int(audio.sample_rate_hz)
        seconds = len(samples) / rate
        if self.variant is TURBO and seconds <= voices.TURBO_MIN_SECONDS:
            raise InvalidArgument(
                "reference_audio",
                f"must be longer than {voices.TURBO_MIN_SECONDS:g} s for Turbo, "
                f"got {seconds:.2f} s",
            )
        if not np.any(samples):
            raise InvalidArgument("reference_audio", "is silent")
        return samples, rate

    # ------------------------------------------------------------------ synthesis

    def _voice(self, settings: ChatterboxSettings) -> voices.Voice:
        if settings.reference is None:
            assert self.builtin is not None
            return self.builtin
        found = self.cache.get(settings.reference_key)
        if found is None:
            wav = voices.at_24k(*settings.reference, turbo=self.variant is TURBO)
            found = voices.encode(wav, self.t3.config, self.ve, self.s3gen)
            self.cache.put(settings.reference_key, found)
        return found

    def text_tokens(self, text: str, settings: ChatterboxSettings) -> list[int]:
        """T3's text input for one piece, as the reference builds it."""
        normalized = tokenizers.normalize_punctuation(text, self.variant.name)
        if self.variant is TURBO:
            return list(self.tokenizer.encode(normalized))
        if self.variant is MULTILINGUAL:
            ids = self.tokenizer.encode(normalized, settings.language)
        else:
            ids = self.tokenizer.encode(normalized)
        config = self.t3.config
        return [config.start_text, *ids, config.stop_text]

    def speech_tokens(
        self, generated: list[int], final: bool = True, chunked: bool = False
    ) -> list[int]:
        """What S3Gen renders of T3's tokens: between a start and the stop token, only
        tokens S3Gen knows; Turbo adds three silence tokens at the end (`final`: T3 is
        done with the piece). A chunked piece drops a start token like any other that
        S3Gen does not know, instead of starting after it: what was sent stays."""
        if START_SPEECH in generated and not chunked:
            generated = generated[generated.index(START_SPEECH) + 1 :]
        if STOP_SPEECH in generated:
            generated = generated[: generated.index(STOP_SPEECH)]
        kept = [t for t in generated if t < SPEECH_VOCAB]
        if self.variant is TURBO and final:
            kept += [SILENCE_TOKEN] * 3
        return kept

    def synthesize(self, text: str, settings: ChatterboxSettings) -> Samples:
        return self.run_batch([SynthesisJob(text, settings)])[0]

    def run_batch(self, items: Sequence[SynthesisJob]) -> list[Samples]:
        """Each piece's audio; a chunked stream's piece (a sink and chunk_tokens) hands
        its audio to the sink as T3 goes and returns what is left at the end."""
        use_threads()
        jobs = []
        found = []
        streams: dict[int, SentenceStream] = {}
        for index, item in enumerate(items):
            settings: ChatterboxSettings = item.settings
            voice = self._voice(settings)
            found.append(voice)
            cond = T3Conditionals(voice.speaker, voice.prompt_tokens, settings.exaggeration)
            job = T3Job(
                cond,
                self.text_tokens(item.text, settings),
                settings.sampling,
                settings.generator,
                cancelled=item.cancelled,
            )
            if settings.chunk_tokens and item.sink is not None:
                stream = SentenceStream(self.s3gen, voice.reference, _fork(settings.generator))
                streams[index] = stream
                job.every = settings.chunk_tokens
                job.on_tokens = self._chunk_sink(stream, item.sink)
            jobs.append(job)
        generated = generate(self.t3, jobs)
        audio: list[Samples] = [np.zeros(0, np.float32) for _ in items]
        rows, where = [], []
        device = self.s3gen.device
        for index, (tokens, voice, item) in enumerate(zip(generated, found, items, strict=True)):
            if item.cancelled is not None and item.cancelled.is_set():
                continue
            kept = self.speech_tokens(tokens, chunked=index in streams)
            if index in streams:
                if kept:
                    rest = streams[index].push(torch.tensor(kept, device=device), final=True)
                    audio[index] = rest.float().cpu().numpy()
            elif kept:
                rows.append(
                    Row(torch.tensor(kept, device=device), voice.reference, item.settings.generator)
                )
                where.append(index)
        if rows:
            for index, output in zip(where, self.s3gen.generate(rows), strict=True):
                audio[index] = output.audio.float().cpu().numpy()
        return audio

    def _chunk_sink(
        self, stream: SentenceStream, sink: Callable[[Samples], None]
    ) -> Callable[[list[int]], None]:
        def render(generated: list[int]) -> None:
            kept = self.speech_tokens(generated, final=False, chunked=True)
            if not kept:
                return
            part = stream.push(torch.tensor(kept, device=self.s3gen.device), final=False)
            if part.numel():
                sink(part.float().cpu().numpy())

        return render


def _fork(generator: torch.Generator) -> torch.Generator:
    """A CPU generator seeded from a copy of `generator`, which draws on as if unforked."""
    copy = torch.Generator(device=generator.device)
    copy.set_state(generator.get_state())
    seed = int(torch.randint(0, 2**62, (1,), generator=copy, device=generator.device))
    return torch.Generator().manual_seed(seed)


class Chatterbox(ChatterboxBase):
    family = "chatterbox"
    variant = STANDARD
    default_source = "ResembleAI/chatterbox"
    hub_patterns = (
        *STANDARD.tokenizer_files,
        STANDARD.t3_file,
        STANDARD.ve_file,
        STANDARD.s3gen_file,
        CONDS_FILE,
    )


class ChatterboxMultilingual(ChatterboxBase):
    family = "chatterbox-multilingual"
    variant = MULTILINGUAL
    default_source = "ResembleAI/chatterbox"
    hub_patterns = (
        *MULTILINGUAL.tokenizer_files, MULTILINGUAL.t3_file, MULTILINGUAL.ve_file,
        MULTILINGUAL.s3gen_file, CONDS_FILE, *MULTILINGUAL.extra_files,
    )  # fmt: skip


class ChatterboxTurbo(ChatterboxBase):
    family = "chatterbox-turbo"
    variant = TURBO
    default_source = "ResembleAI/chatterbox-turbo"
    hub_patterns = ("*.json", "*.txt", "*.safetensors", CONDS_FILE)
