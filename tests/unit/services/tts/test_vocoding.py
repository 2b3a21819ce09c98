"""Streaming vocoding windows and mel tensors: streamed audio equals the whole spectrogram's."""

from __future__ import annotations

import numpy as np
import pytest

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.errors import InvalidArgument
from speechmesh.services.tts.tensors import mel_from_tensor, tensor_from_mel
from speechmesh.services.tts.vocoding import MelStream

N_MELS, HOP, CONTEXT = 4, 8, 3
KERNEL = np.random.default_rng(0).standard_normal((N_MELS, 2 * CONTEXT + 1)).astype(np.float32)


def local_vocoder(mel: np.ndarray) -> np.ndarray:
    """Each frame's samples depend on the frames within CONTEXT of it (zeros beyond the
    edges), as in a convolutional vocoder with that receptive field."""
    padded = np.pad(mel, ((0, 0), (CONTEXT, CONTEXT)))
    frames = np.array(
        [(padded[:, t : t + 2 * CONTEXT + 1] * KERNEL).sum() for t in range(mel.shape[1])]
    )
    shape = np.linspace(0.5, 1.0, HOP, dtype=np.float32)
    return (np.tanh(frames)[:, None] * shape).reshape(-1).astype(np.float32)


@pytest.mark.parametrize("sizes", [[1] * 40, [5, 1, 17, 2, 15], [40], [2, 3, 35]])
def test_windowed_stream_equals_the_whole_spectrogram(sizes):
    mel = np.random.default_rng(len(sizes)).standard_normal((N_MELS, 40)).astype(np.float32)
    stream, pieces, start = MelStream(N_MELS, CONTEXT, HOP), [], 0
    windows = []
    for size in sizes:
        windows.append(stream.push(mel[:, start : start + size]))
        start += size
    windows.append(stream.finish())
    for window in windows:
        if window is not None:
            pieces.append(local_vocoder(window.mel)[window.keep_from : window.keep_to])
    assert stream.received == 40
    np.testing.assert_allclose(np.concatenate(pieces), local_vocoder(mel), rtol=1e-6, atol=1e-6)


def test_no_window_until_context_frames_follow():
    stream = MelStream(N_MELS, CONTEXT, HOP)
    assert stream.push(np.zeros((N_MELS, CONTEXT), np.float32)) is None
    window = stream.push(np.zeros((N_MELS, 1), np.float32))
    assert window is not None and (window.keep_from, window.keep_to) == (0, HOP)
    assert window.mel.shape == (N_MELS, CONTEXT + 1)


def test_mel_tensors_round_trip_and_float16_is_read():
    mel = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(mel_from_tensor(tensor_from_mel(mel, "mel"), "mel", 3, "mel"), mel)
    half = audio_pb2.Tensor(
        shape=[1, 3, 4], dtype=audio_pb2.DATA_TYPE_FLOAT16, data=mel.astype("<f2").tobytes()
    )
    assert np.array_equal(mel_from_tensor(half, "mel", 3, ""), mel)


@pytest.mark.parametrize(
    ("tensor", "field"),
    [
        (
            audio_pb2.Tensor(shape=[3, 4], dtype=audio_pb2.DATA_TYPE_INT32, data=b"\0" * 48),
            "mel.dtype",
        ),
        (
            audio_pb2.Tensor(shape=[3, 4, 1], dtype=audio_pb2.DATA_TYPE_FLOAT32, data=b"\0" * 48),
            "mel.shape",
        ),
        (
            audio_pb2.Tensor(shape=[5, 4], dtype=audio_pb2.DATA_TYPE_FLOAT32, data=b"\0" * 80),
            "mel.shape",
        ),
        (
            audio_pb2.Tensor(shape=[3, 4], dtype=audio_pb2.DATA_TYPE_FLOAT32, data=b"\0" * 47),
            "mel.data",
        ),
        (
            audio_pb2.Tensor(
                shape=[3, 4], dtype=audio_pb2.DATA_TYPE_FLOAT32, data=b"\0" * 48, kind="log"
            ),
            "mel.kind",
        ),
        (
            audio_pb2.Tensor(
                shape=[3, 1],
                dtype=audio_pb2.DATA_TYPE_FLOAT32,
                data=np.array([1, np.nan, 2], "<f4").tobytes(),
            ),
            "mel.data",
        ),
    ],
)
def test_bad_mel_tensors_name_the_field(tensor, field):
    with pytest.raises(InvalidArgument) as raised:
        mel_from_tensor(tensor, "mel", 3, "mel")
    assert raised.value.violations[0].field == field
