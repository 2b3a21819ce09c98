"""Audio and embeddings sent inside JSON bodies: base64, the audio in any container the
mesh reads (told from its first bytes), an embedding as /v1/embed/speaker returns it."""

from __future__ import annotations

import base64
import binascii

from google.protobuf.message import DecodeError

from speechmesh.audio.v1 import audio_pb2
from speechmesh.gateway.http.errors import ApiError
from speechmesh.runtime.audio import detect_encoding


def _bytes(value: str, param: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{param}: not valid base64", param=param) from None


def audio_payload(value: str, param: str) -> audio_pb2.Audio:
    data = _bytes(value, param)
    encoding = detect_encoding(data)
    if encoding is None:
        raise ApiError(
            400,
            f"{param}: not audio the mesh reads (WAV, FLAC, MP3, AAC or M4A, Ogg, WebM)",
            param=param,
            code="invalid_file_format",
        )
    return audio_pb2.Audio(format=audio_pb2.AudioFormat(encoding=encoding), data=data)


def embedding_payload(value: str, param: str) -> audio_pb2.SpeakerEmbedding:
    embedding = audio_pb2.SpeakerEmbedding()
    try:
        embedding.ParseFromString(_bytes(value, param))
    except DecodeError:
        raise ApiError(
            400, f"{param}: not an embedding from /v1/embed/speaker", param=param
        ) from None
    return embedding
