"""A reference clip's speech cut into pieces to embed, as OpenVoice's se_extractor does.

An OP_EMBED step given the speech segments of its audio (from an OP_DETECT step)
embeds only the speech: the segments' audio is joined, what lies between them left
out, and the joined speech cut into round(seconds / piece_seconds) pieces of equal
length, at least one; the last piece runs to the end. Each piece is one clip of the
Embed call, and the encoder averages their embeddings. The reference
(split_audio_vad) slices its audio in whole milliseconds, so segment and piece ends
are truncated to the millisecond, then to the sample, as it does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speechmesh.gateway.values import AudioPiece
from speechmesh.runtime.errors import InvalidArgument
from speechmesh.vad.v1 import vad_pb2

PIECE_SECONDS = 10.0  # the reference's split_seconds


def _sample(ms: int, rate: int) -> int:
    """The first sample of millisecond `ms` (how the reference's audio library slices)."""
    return int(ms * (rate / 1000.0))


def speech_pieces(
    clip: AudioPiece,
    segments: Sequence[vad_pb2.SpeechSegment],
    piece_seconds: float,
    field: str,
) -> list[AudioPiece]:
    """The pieces of `clip`'s speech; InvalidArgument on `field` when it has none."""
    rate = clip.rate
    parts = [
        clip.samples[_sample(int(s.start_ms), rate) : _sample(int(s.end_ms), rate)]
        for s in segments
    ]
    speech = np.concatenate(parts) if parts else clip.samples[:0]
    if not len(speech):
        raise InvalidArgument(
            field,
            "the reference holds no speech (voice activity detection found none in it); "
            "send a recording of the voice speaking",
        )
    seconds = len(speech) / rate
    # The reference refuses speech under half a piece (no piece at all); one piece is
    # what it would embed without the cut.
    count = max(1, round(seconds / piece_seconds))
    interval = seconds / count
    pieces, start = [], 0.0
    for index in range(count):
        end = seconds if index == count - 1 else min(start + interval, seconds)
        first, last = _sample(int(start * 1000), rate), _sample(int(end * 1000), rate)
        pieces.append(AudioPiece(speech[first:last], rate))
        start = end
    return pieces
