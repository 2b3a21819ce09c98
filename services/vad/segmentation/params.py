"""VadOptions from a request → validated VadParams; shared by every service that segments speech."""

from __future__ import annotations

from typing import Any

from speechmesh.runtime.errors import InvalidArgument
from speechmesh.runtime.numbers import number_option
from speechmesh.services.vad.segmentation.segmenter import VadParams
from speechmesh.vad.v1 import vad_pb2

MAX_DURATION_OPTION_MS = 600_000
# Silero's window: 512 samples at 16 kHz, 256 at 8 kHz.
WINDOW_MS = 32
# Hysteresis: inside speech, a window is silence only well below the threshold.
NEGATIVE_THRESHOLD_GAP = 0.15


def vad_params(
    options: vad_pb2.VadOptions, field: str = "options", defaults: VadParams | None = None
) -> VadParams:
    """Validated detector settings from the request's options, `defaults` filled in."""
    defaults = defaults or VadParams()

    def value(name: str, default: float) -> Any:
        if not options.HasField(name):
            return default
        number = getattr(options, name)
        return number_option(number, f"{field}.{name}") if isinstance(number, float) else number

    threshold = value("threshold", defaults.threshold)
    if not 0.0 < threshold < 1.0:
        raise InvalidArgument(f"{field}.threshold", f"must be between 0 and 1, got {threshold}")
    negative = value("negative_threshold", max(threshold - NEGATIVE_THRESHOLD_GAP, 0.01))
    if not 0.0 < negative <= threshold:
        raise InvalidArgument(
            f"{field}.negative_threshold", f"must be in (0, threshold={threshold}], got {negative}"
        )
    durations = {
        "min_speech_duration_ms": value("min_speech_duration_ms", defaults.min_speech_ms),
        "min_silence_duration_ms": value("min_silence_duration_ms", defaults.min_silence_ms),
        "speech_pad_ms": value("speech_pad_ms", defaults.speech_pad_ms),
    }
    for name, milliseconds in durations.items():
        if milliseconds > MAX_DURATION_OPTION_MS:
            raise InvalidArgument(
                f"{field}.{name}",
                f"must be at most {MAX_DURATION_OPTION_MS} ms, got {milliseconds}",
            )
    max_speech = value("max_speech_duration_s", defaults.max_speech_s)
    if max_speech < 0 or (0 < max_speech * 1000 < durations["min_speech_duration_ms"]):
        raise InvalidArgument(
            f"{field}.max_speech_duration_s",
            f"must be 0 (no limit) or at least min_speech_duration_ms, got {max_speech} s",
        )
    params = VadParams(
        threshold=threshold,
        negative_threshold=negative,
        min_speech_ms=durations["min_speech_duration_ms"],
        min_silence_ms=durations["min_silence_duration_ms"],
        speech_pad_ms=durations["speech_pad_ms"],
        max_speech_s=max_speech,
    )
    check_room_for_speech(params, f"{field}.max_speech_duration_s")
    return params


def check_room_for_speech(params: VadParams, field: str) -> None:
    """A segment is cut at max_speech less the padding on both sides and one window
    (Silero's rule); with no room left the detector would end every segment at once and
    report no speech, so such settings are refused."""
    if params.max_speech_s <= 0:
        return
    needed_ms = 2 * params.speech_pad_ms + WINDOW_MS
    if params.max_speech_s * 1000 <= needed_ms:
        raise InvalidArgument(
            field,
            f"{params.max_speech_s:g} s leaves no room for speech: a segment needs more than "
            f"2 × speech_pad_ms ({params.speech_pad_ms} ms) + one {WINDOW_MS} ms window; "
            "lower speech_pad_ms or raise max_speech_duration_s",
        )
