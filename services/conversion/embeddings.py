"""Speaker embeddings between protobuf and numpy, tagged with the family that made them.

An embedding only means something to models of the family that produced it, so every
embedding a client sends is checked against the model it is meant for: family, size
and finite values, each a clear INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.errors import InvalidArgument

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EmbeddingSpec:
    """What a model's embeddings are: the family's tag and their length."""

    family: str
    size: int


def from_proto(embedding: audio_pb2.SpeakerEmbedding, spec: EmbeddingSpec, field: str) -> Vector:
    """The vector of a client's embedding, checked against what the model expects."""
    if not embedding.model_family:
        raise InvalidArgument(
            f"{field}.model_family", f"is required; this model takes {spec.family!r} embeddings"
        )
    if embedding.model_family != spec.family:
        raise InvalidArgument(
            f"{field}.model_family",
            f"a {embedding.model_family!r} embedding cannot be used with this model, "
            f"which takes {spec.family!r} embeddings",
        )
    if len(embedding.values) != spec.size:
        raise InvalidArgument(
            f"{field}.values",
            f"has {len(embedding.values)} values; {spec.family!r} embeddings have {spec.size}",
        )
    vector = np.asarray(embedding.values, dtype=np.float32)
    if not np.isfinite(vector).all():
        raise InvalidArgument(f"{field}.values", "holds NaN or infinite values")
    return vector


def to_proto(vector: Vector, spec: EmbeddingSpec, model_id: str) -> audio_pb2.SpeakerEmbedding:
    return audio_pb2.SpeakerEmbedding(
        model_family=spec.family, model=model_id, values=vector.astype(np.float32).tolist()
    )
