"""A RecognizeResponse in each of OpenAI's transcription response formats.

json and text carry the text; srt and vtt are captions, one cue per segment; and
verbose_json is OpenAI's verbose transcription: language, duration, and the segments
and words that `timestamp_granularities` asks for, times in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from speechmesh.stt.v1 import stt_pb2


def _clock(ms: float, separator: str) -> str:
    """hh:mm:ss,mmm (SRT) or hh:mm:ss.mmm (WebVTT)."""
    total = max(0, round(ms))
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _cues(segments: Iterable[stt_pb2.Segment]) -> list[tuple[float, float, str]]:
    return [(s.start_ms, s.end_ms, s.text.strip()) for s in segments if s.text.strip()]


def srt(segments: Iterable[stt_pb2.Segment]) -> str:
    blocks = [
        f"{index}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n"
        for index, (start, end, text) in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def vtt(segments: Iterable[stt_pb2.Segment]) -> str:
    blocks = [
        f"{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n"
        for start, end, text in _cues(segments)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def verbose_json(
    response: stt_pb2.RecognizeResponse, task: str, granularities: set[str]
) -> dict[str, Any]:
    """OpenAI's verbose_json; segments unless only words were asked for, as OpenAI does."""
    body: dict[str, Any] = {
        "task": task,
        "language": response.language,
        "duration": response.duration_ms / 1000,
        "text": response.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {
                "id": index,
                "seek": segment.seek,
                "start": segment.start_ms / 1000,
                "end": segment.end_ms / 1000,
                "text": segment.text,
                "tokens": list(segment.tokens),
                "temperature": segment.temperature,
                "avg_logprob": segment.avg_log_prob,
                "compression_ratio": segment.compression_ratio,
                "no_speech_prob": segment.no_speech_prob,
            }
            for index, segment in enumerate(response.segments)
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": word.word.strip(), "start": word.start_ms / 1000, "end": word.end_ms / 1000}
            for word in response.words
        ]
    return body
