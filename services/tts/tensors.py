"""Mel spectrograms in and out of speechmesh.audio.v1.Tensor, checked field by field."""

from __future__ import annotations

import math

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.errors import InvalidArgument

_DTYPES = {
    audio_pb2.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    audio_pb2.DATA_TYPE_FLOAT16: np.dtype("<f2"),
}


def mel_from_tensor(tensor: audio_pb2.Tensor, field: str, n_mels: int, kind: str) -> np.ndarray:
    """[n_mels, frames] float32 from a Tensor of shape [n_mels, frames] or [1, n_mels,
    frames], float32 or float16, of the `kind` the vocoder expects."""
    dtype = _DTYPES.get(tensor.dtype)
    if dtype is None:
        allowed = ", ".join(audio_pb2.DataType.Name(d) for d in _DTYPES)
        raise InvalidArgument(
            f"{field}.dtype", f"{tensor.dtype} is not accepted; allowed: {allowed}"
        )
    shape = list(tensor.shape)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 2 or min(shape) < 1:
        raise InvalidArgument(
            f"{field}.shape",
            f"must be [n_mels, frames] (or [1, n_mels, frames]), got {list(tensor.shape)}",
        )
    if shape[0] != n_mels:
        raise InvalidArgument(
            f"{field}.shape", f"the vocoder takes {n_mels} mel bands, got {shape[0]}"
        )
    expected = math.prod(shape) * dtype.itemsize
    if len(tensor.data) != expected:
        raise InvalidArgument(
            f"{field}.data",
            f"holds {len(tensor.data)} bytes; shape {shape} of {dtype.name} needs {expected}",
        )
    if kind and tensor.kind and tensor.kind != kind:
        raise InvalidArgument(
            f"{field}.kind", f"the vocoder takes {kind!r} spectrograms, got {tensor.kind!r}"
        )
    mel = np.frombuffer(tensor.data, dtype).reshape(shape).astype(np.float32)
    if not np.isfinite(mel).all():
        raise InvalidArgument(f"{field}.data", "holds NaN or infinite values")
    return mel


def tensor_from_mel(mel: np.ndarray, kind: str) -> audio_pb2.Tensor:
    """A float32 Tensor [n_mels, frames]."""
    array = np.ascontiguousarray(mel, dtype="<f4")
    return audio_pb2.Tensor(
        shape=list(array.shape), dtype=audio_pb2.DATA_TYPE_FLOAT32, data=array.tobytes(), kind=kind
    )
