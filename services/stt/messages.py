"""Decoded segments and words → protobuf, with offsets on the caller's timeline.

The model works at 16 kHz from the start of a window; a client counts samples at its
own rate from the start of its audio or stream. A Timeline maps one to the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from speechmesh.services.stt.transcriber import SAMPLE_RATE, DecodedSegment
from speechmesh.stt.v1 import stt_pb2

FRAME_SAMPLES = SAMPLE_RATE // 100
"""Whisper's seek counts 10 ms mel frames."""


@dataclass(frozen=True)
class Timeline:
    """Input-rate offsets of model-rate (16 kHz) positions, capped at the input's length."""

    rate_hz: int
    total_samples: int

    def sample(self, model_sample: float) -> int:
        return min(max(round(model_sample * self.rate_hz / SAMPLE_RATE), 0), self.total_samples)

    def seconds(self, window_start: int, seconds: float) -> int:
        """The input sample `seconds` into a window that starts at model sample window_start."""
        return self.sample(window_start + seconds * SAMPLE_RATE)

    def ms(self, sample: int) -> float:
        return sample * 1000 / self.rate_hz


def confidence(avg_logprob: float) -> float:
    return float(math.exp(min(avg_logprob, 0.0)))


def words_proto(
    segments: list[DecodedSegment], window_start: int, timeline: Timeline
) -> list[stt_pb2.Word]:
    words = []
    for segment in segments:
        for word in segment.words:
            start = timeline.seconds(window_start, word.start_s)
            end = max(timeline.seconds(window_start, word.end_s), start)
            words.append(
                stt_pb2.Word(
                    word=word.word.strip(),
                    start_sample=start,
                    end_sample=end,
                    start_ms=timeline.ms(start),
                    end_ms=timeline.ms(end),
                    confidence=word.probability,
                )
            )
    return words


def segment_proto(
    segment: DecodedSegment, window_start: int, timeline: Timeline, first_word: int
) -> stt_pb2.Segment:
    start = timeline.seconds(window_start, segment.start_s)
    end = max(timeline.seconds(window_start, segment.end_s), start)
    return stt_pb2.Segment(
        text=segment.text.strip(),
        start_sample=start,
        end_sample=end,
        start_ms=timeline.ms(start),
        end_ms=timeline.ms(end),
        avg_log_prob=segment.avg_logprob,
        no_speech_prob=segment.no_speech_prob,
        compression_ratio=segment.compression_ratio,
        temperature=segment.temperature,
        first_word=first_word if segment.words else 0,
        num_words=len(segment.words),
        tokens=segment.tokens,
        seek=window_start // FRAME_SAMPLES,
    )
