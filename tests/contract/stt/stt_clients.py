"""Request builders shared by the STT contract tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
from support import pcm16

from speechmesh.audio.v1 import audio_pb2
from speechmesh.stt.v1 import stt_pb2

S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE


def s16_format(rate: int) -> audio_pb2.AudioFormat:
    return audio_pb2.AudioFormat(encoding=S16, sample_rate_hz=rate, channels=1)


def recognize_request(audio: np.ndarray, rate: int, **options: object) -> stt_pb2.RecognizeRequest:
    return stt_pb2.RecognizeRequest(
        audio=audio_pb2.Audio(format=s16_format(rate), data=pcm16(audio)),
        options=stt_pb2.RecognitionOptions(**options),
    )


def stream_requests(
    audio: np.ndarray,
    rate: int,
    *,
    chunk_s: float = 0.1,
    pace: float = 0.0,
    interim: bool = False,
    **config: object,
) -> Iterator[stt_pb2.StreamingRecognizeRequest]:
    """Config, then the audio in chunks; `pace` > 0 sends at pace × real time."""
    yield stt_pb2.StreamingRecognizeRequest(
        config=stt_pb2.StreamingRecognizeConfig(
            format=s16_format(rate), interim_results=interim, **config
        )
    )
    data = pcm16(audio)
    step = int(rate * chunk_s) * 2
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(data), step)):
        if pace:
            time.sleep(max(0.0, started + index * chunk_s / pace - time.monotonic()))
        yield stt_pb2.StreamingRecognizeRequest(
            audio=audio_pb2.AudioChunk(data=data[offset : offset + step])
        )


def finals(
    responses: list[stt_pb2.StreamingRecognizeResponse],
) -> list[stt_pb2.StreamingRecognitionResult]:
    return [r for response in responses for r in response.results if r.is_final]
