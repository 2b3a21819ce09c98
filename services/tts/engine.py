"""The contract of a text-to-speech model family, on top of the runtime's Engine.

A TTS engine turns one piece of text (a sentence, or part of an over-long one) into
mono float32 audio at its native rate. The service does everything around that:
splitting text into pieces, pipelining them, streaming, resampling and encoding. A
family implements:

- `load()` (from Engine): find and load its files; FailedPrecondition when missing;
- `voices()` and `default_voice`: what it can speak with;
- `settings(params)`: checks the request's options for this model and returns the
  family's own, resolved settings (voice id, scales, ...);
- `synthesize(text, settings)`: one piece of text to audio.

Common options a family cannot honour are refused here, from the `controls` it
declares, so no family can ignore one silently. A family that can run several pieces
as one model call overrides `run_batch`; the default runs them one after another in
the model's thread.

Two optional capabilities, for families whose vocoder is separate (HarmonySpeech's
MB-MelGAN, for one): `SpectrogramSynthesis` (a TTS engine that can also stop at the
mel spectrogram) and `Vocoder` (a model of the Vocoder service).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.audio import DecodedAudio, Samples
from speechmesh.runtime.engine import Engine, ModelDescription, VoiceInfo
from speechmesh.runtime.errors import InvalidArgument, NotFound
from speechmesh.runtime.numbers import number_option
from speechmesh.runtime.text import Piece, split_text

TEXT_TO_SPEECH = "speechmesh.tts.v1.TextToSpeech"
VOCODER = "speechmesh.tts.v1.Vocoder"

# Bounds on speed: beyond them speech is unintelligible, and a tiny speed would turn
# a short text into hours of audio.
MIN_SPEED = 0.1
MAX_SPEED = 10.0
WARMUP_TEXT = "Warming up."


@dataclass(frozen=True)
class SpeakerEmbedding:
    """A speaker embedding, tagged with the family that made it."""

    model_family: str
    model: str
    values: np.ndarray


@dataclass(frozen=True)
class SynthesisParams:
    """A request's synthesis options in domain terms, before a model checks them."""

    voice: str = ""
    language: str = ""
    speed: float = 1.0
    pitch: float | None = None
    energy: float | None = None
    seed: int | None = None
    speaker_embedding: SpeakerEmbedding | None = None
    reference_audio: DecodedAudio | None = None
    family_options_case: str | None = None
    """Which family's options the request set (SynthesisOptions.family_options), if any."""
    family_options: Mapping[str, Any] = field(default_factory=dict)
    """The fields of those options that the request set, by name."""
    stream: bool = False
    """The request is a stream (StreamingSynthesize, BidiSynthesize): options that only
    a stream can honour (audio within a sentence) are allowed."""


@dataclass(frozen=True)
class SynthesisJob:
    """One piece of text for the model, with the settings `Synthesizer.settings` returned."""

    text: str
    settings: Any
    spectrogram: bool = False
    """Stop at the mel spectrogram (SpectrogramSynthesis engines only)."""
    sink: Callable[[Samples], None] | None = None
    """A stream's piece: an engine that makes audio within a piece may hand each part
    to `sink` (from the model's thread) as it is made; its result is then the rest."""
    cancelled: threading.Event | None = None
    """Set once the caller has gone: an engine may stop the piece where it is."""


@dataclass(frozen=True)
class Spectrogram:
    """A mel spectrogram and how to read it, as the paired vocoder expects it."""

    mel: np.ndarray
    """[n_mels, frames] float32."""
    kind: str
    """Its scaling, e.g. "mel" or "log_mel"."""
    sample_rate_hz: int
    samples_per_frame: int


def _speaks(languages: Sequence[str], wanted: str) -> bool:
    """Whether a BCP-47 tag is among `languages`, or a prefix of one ("en" of "en-US")."""
    wanted = wanted.lower()
    return any(tag.lower() == wanted or tag.lower().startswith(wanted + "-") for tag in languages)


class Synthesizer(Engine):
    """One loaded text-to-speech model."""

    service: ClassVar[str] = TEXT_TO_SPEECH
    tasks: ClassVar[tuple[models_pb2.Task.ValueType, ...]] = (models_pb2.TASK_SPEECH_SYNTHESIS,)
    options_field: ClassVar[str]
    """The family's case of SynthesisOptions.family_options, e.g. "piper"."""
    max_piece_chars: ClassVar[int] = 400
    """Longest piece of text the model takes in one call; longer sentences are cut."""
    whole_text_unary: ClassVar[bool] = False
    """Synthesize and SynthesizeSpectrogram pass the whole text as one piece, uncut (a
    family whose reference reads a request as one sequence); streams still go by piece."""
    controls: ClassVar[frozenset[str]] = frozenset()
    """Optional common controls it honours, by SynthesisOptions field name: "pitch",
    "energy", "seed", "speaker_embedding", "reference_audio"."""

    sample_rate_hz: int
    """Native rate of its audio, known once loaded."""

    @abstractmethod
    def voices(self) -> tuple[VoiceInfo, ...]:
        """The voices it speaks with, once loaded."""

    @property
    @abstractmethod
    def default_voice(self) -> str:
        """The voice id used when a request names none."""

    @abstractmethod
    def settings(self, params: SynthesisParams) -> Any:
        """The family's settings for these options; InvalidArgument or NotFound when
        they do not fit this model. Common controls are already checked. Fields are
        named as in SynthesisOptions, e.g. "piper.noise_scale"."""

    @abstractmethod
    def synthesize(self, text: str, settings: Any) -> Samples:
        """One piece of text to mono float32 audio at sample_rate_hz (maybe empty)."""

    def pieces(self, text: str, settings: Any) -> list[Piece]:
        """A whole text (Synthesize, StreamingSynthesize) cut into the pieces that
        `synthesize` takes one at a time: sentences, and parts of sentences longer than
        max_piece_chars. A family whose reference cuts text its own way overrides it."""
        return split_text(text, self.max_piece_chars)

    def languages(self) -> tuple[str, ...]:
        """BCP-47 languages it speaks: those of its voices, unless a family knows better."""
        seen: dict[str, None] = {}
        for voice in self.voices():
            seen.update(dict.fromkeys(voice.languages))
        return tuple(seen) or tuple(self.config.languages)

    def prepare(self, params: SynthesisParams) -> Any:
        """Checks a request's options against this model; its settings for `run_batch`.
        InvalidArgument names fields as in SynthesisOptions ("speed", "piper.noise_w")."""
        self._check_common(params)
        return self.settings(params)

    def _check_common(self, params: SynthesisParams) -> None:
        what = f"model {self.config.id!r} ({self.family})"
        number_option(params.speed, "speed", at_least=MIN_SPEED, at_most=MAX_SPEED)
        requested = {
            "pitch": params.pitch is not None,
            "energy": params.energy is not None,
            "seed": params.seed is not None,
            "speaker_embedding": params.speaker_embedding is not None,
            "reference_audio": params.reference_audio is not None,
        }
        for name, given in requested.items():
            if given and name not in self.controls:
                raise InvalidArgument(name, f"{what} has no {name} control")
        for name in ("pitch", "energy"):
            value = getattr(params, name)
            if value is not None:
                number_option(value, name, above=0)
        embedding = params.speaker_embedding
        accepted = self.accepted_embedding_families
        if embedding is not None and embedding.model_family not in accepted:
            raise InvalidArgument(
                "speaker_embedding.model_family",
                f"{what} takes embeddings of family {' or '.join(map(repr, accepted))}, "
                f"not {embedding.model_family!r}",
            )
        case = params.family_options_case
        if case is not None and case != self.options_field:
            raise InvalidArgument(
                case,
                f"{what} takes options.{self.options_field}, not options.{case}",
            )
        if params.language and not _speaks(self.languages(), params.language):
            # A language is something a model serves, like a voice: one it lacks is not
            # found, whatever the text.
            raise NotFound(
                f"language {params.language!r} is not served by {what}; it speaks "
                f"{', '.join(self.languages()) or 'no declared language'}"
            )

    def find_voice(self, name: str, aliases: Mapping[str, str] | None = None) -> str:
        """The voice id `name` stands for (the default when empty), or NotFound."""
        if not name:
            return self.default_voice
        ids = [voice.id for voice in self.voices()]
        if name in ids:
            return name
        if aliases and name in aliases and aliases[name] in ids:
            return aliases[name]
        known = ", ".join([*ids, *(aliases or {})])
        raise NotFound(
            f"voice {name!r} is not a voice of model {self.config.id!r} (known: {known})"
        )

    def run_batch(self, items: Sequence[SynthesisJob]) -> list[Any]:
        """Runs the pieces one after another: the model's thread sees one call at a time."""
        return [self._run(job) for job in items]

    def _run(self, job: SynthesisJob) -> Any:
        if job.spectrogram:
            if not isinstance(self, SpectrogramSynthesis):
                raise TypeError(f"{self.family} has no spectrogram output")
            return self.synthesize_spectrogram(job.text, job.settings)
        return self.synthesize(job.text, job.settings)

    def warmup(self) -> None:
        self.synthesize(WARMUP_TEXT, self.prepare(SynthesisParams()))

    def describe(self) -> ModelDescription:
        return ModelDescription(
            languages=self.languages(),
            voices=self.voices(),
            native_sample_rate_hz=self.sample_rate_hz,
        )


class SpectrogramSynthesis(ABC):
    """For a Synthesizer whose family vocodes separately: it can stop at the mel
    spectrogram (TextToSpeech/SynthesizeSpectrogram). Such a family lists
    TASK_SPECTROGRAM_SYNTHESIS in its tasks."""

    paired_vocoder: str = ""
    """Id of the Vocoder model that turns its spectrograms into audio, if hosted."""

    @abstractmethod
    def synthesize_spectrogram(self, text: str, settings: Any) -> Spectrogram:
        """One piece of text to its mel spectrogram."""


class Vocoder(Engine):
    """One loaded vocoder: mel spectrogram to audio (the Vocoder service)."""

    service: ClassVar[str] = VOCODER
    tasks: ClassVar[tuple[models_pb2.Task.ValueType, ...]] = (models_pb2.TASK_VOCODING,)
    context_frames: ClassVar[int]
    """Frames on either side beyond which input cannot change a frame's audio (the
    receptive field); StreamingVocode overlaps its windows by this much."""

    n_mels: int
    mel_kind: str
    sample_rate_hz: int
    samples_per_frame: int

    @abstractmethod
    def vocode(self, mel: np.ndarray) -> Samples:
        """[n_mels, frames] to exactly frames × samples_per_frame samples."""

    def finish(self, samples: Samples) -> Samples:
        """What Vocode does to the audio of a whole spectrogram before sending it (e.g. a
        family's peak normalisation); StreamingVocode sends its windows as vocoded."""
        return samples

    def run_batch(self, items: Sequence[np.ndarray]) -> list[Samples]:
        return [self.vocode(mel) for mel in items]

    def warmup(self) -> None:
        self.vocode(np.zeros((self.n_mels, 2 * self.context_frames + 1), np.float32))

    def describe(self) -> ModelDescription:
        return ModelDescription(native_sample_rate_hz=self.sample_rate_hz)
