"""RecognitionOptions from a request → validated decoding and segmentation settings."""

from __future__ import annotations

import dataclasses
import math

from speechmesh.runtime.errors import InvalidArgument
from speechmesh.runtime.numbers import number_option
from speechmesh.services.stt.transcriber import DecodeSettings, Transcriber
from speechmesh.services.vad.segmentation import VadParams, check_room_for_speech, vad_params
from speechmesh.stt.v1 import stt_pb2

MAX_BEAM_SIZE = 16
MAX_BEST_OF = 16
MAX_PROMPT_CHARS = 2000
# An utterance must fit one whisper window with its padding; longer speech is split
# at its longest pause.
MAX_UTTERANCE_S = 28.0
# Endpointing for transcription waits longer than bare VAD: a short breath inside a
# sentence should not end the utterance.
STT_VAD_DEFAULTS = VadParams(min_silence_ms=500, speech_pad_ms=200, max_speech_s=MAX_UTTERANCE_S)


def decode_settings(
    options: stt_pb2.RecognitionOptions, field: str, engine: Transcriber
) -> DecodeSettings:
    """Decoding settings with faster-whisper's defaults where the request is silent."""
    defaults = DecodeSettings()
    beam_size = options.beam_size if options.HasField("beam_size") else defaults.beam_size
    if not 1 <= beam_size <= MAX_BEAM_SIZE:
        raise InvalidArgument(f"{field}.beam_size", f"must be 1..{MAX_BEAM_SIZE}, got {beam_size}")
    best_of = options.best_of if options.HasField("best_of") else defaults.best_of
    if not 1 <= best_of <= MAX_BEST_OF:
        raise InvalidArgument(f"{field}.best_of", f"must be 1..{MAX_BEST_OF}, got {best_of}")
    temperatures = tuple(options.temperatures) or defaults.temperatures
    for index, temperature in enumerate(temperatures):
        number_option(temperature, f"{field}.temperatures[{index}]", at_least=0.0, at_most=1.0)
    for name in ("initial_prompt", "hotwords"):
        if len(getattr(options, name)) > MAX_PROMPT_CHARS:
            raise InvalidArgument(f"{field}.{name}", f"at most {MAX_PROMPT_CHARS} characters")
    settings = DecodeSettings(
        language=language_code(options.language),
        task="translate" if options.task == stt_pb2.RECOGNITION_TASK_TRANSLATE else "transcribe",
        beam_size=beam_size,
        best_of=best_of,
        temperatures=temperatures,
        word_timestamps=options.word_timestamps,
        no_speech_threshold=_threshold(options, "no_speech_threshold", field, defaults),
        log_prob_threshold=_threshold(options, "log_prob_threshold", field, defaults),
        compression_ratio_threshold=_threshold(
            options, "compression_ratio_threshold", field, defaults
        ),
    )
    engine.check_settings(settings, field)
    return settings


def language_code(tag: str) -> str | None:
    """The primary subtag of a BCP-47 tag ("en-US" → "en"); None when empty."""
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary or None


# A no-speech probability is a probability; a compression ratio is positive; an average
# log probability may be any number.
THRESHOLD_BOUNDS: dict[str, dict[str, float]] = {
    "no_speech_threshold": {"at_least": 0.0, "at_most": 1.0},
    "log_prob_threshold": {},
    "compression_ratio_threshold": {"above": 0.0},
}


def _threshold(
    options: stt_pb2.RecognitionOptions, name: str, field: str, defaults: DecodeSettings
) -> float | None:
    if not options.HasField(name):
        default: float | None = getattr(defaults, name)
        return default
    value = getattr(options, name)
    # An infinite threshold switches the check off, as in faster-whisper's None.
    if math.isinf(value):
        return None
    return number_option(value, f"{field}.{name}", **THRESHOLD_BOUNDS[name])


def segmentation_params(options: stt_pb2.RecognitionOptions, field: str) -> VadParams:
    """Where utterances start and end; an utterance fits one whisper window."""
    params = vad_params(options.vad_options, f"{field}.vad_options", STT_VAD_DEFAULTS)
    if params.max_speech_s == 0 or params.max_speech_s > MAX_UTTERANCE_S:
        params = dataclasses.replace(params, max_speech_s=MAX_UTTERANCE_S)
        # The model's window caps an utterance: the padding must leave room in it.
        check_room_for_speech(params, f"{field}.vad_options.speech_pad_ms")
    return params


def hallucination_silence_s(options: stt_pb2.RecognitionOptions, field: str) -> float | None:
    if not options.HasField("hallucination_silence_threshold_s"):
        return None
    return number_option(
        options.hallucination_silence_threshold_s,
        f"{field}.hallucination_silence_threshold_s",
        above=0,
    )
