"""speechmesh.conversion.v1.SpeakerEncoder: Embed, on GE2E encoders or OpenVoice converters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.runtime.audio import DecodedAudio, decode_request_audio
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.errors import InvalidArgument
from speechmesh.runtime.pool import HostedModel, ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.services.conversion import embeddings
from speechmesh.services.conversion.encoder.contract import ENCODER_SERVICE, SpeakerEncoder


def encoder_model(pool: ModelPool, model_id: str) -> HostedModel:
    """The model that embeds for `model_id`: an encoder, or a converter with its own encoder."""
    named = next((m for m in pool.models if m.id == model_id), None)
    if named is not None and isinstance(named.engine, SpeakerEncoder):
        return pool.get(model_id, named.engine.service)
    return pool.get(model_id, ENCODER_SERVICE)


async def decode_clips(
    clips: Sequence[audio_pb2.Audio], field: str, max_seconds: float
) -> list[DecodedAudio]:
    """Every clip decoded; together they may last at most max_seconds."""
    if not clips:
        raise InvalidArgument(field, "at least one recording is needed")
    decoded: list[DecodedAudio] = []
    left = max_seconds
    for index, clip in enumerate(clips):
        audio = await decode_request_audio(clip, f"{field}[{index}]", left)
        left -= audio.duration_s
        decoded.append(audio)
    return decoded


async def embed(
    model: HostedModel, clips: Sequence[DecodedAudio], field: str = "clips"
) -> embeddings.Vector:
    """The embedding of a voice from its decoded clips, on `model`'s encoder."""
    engine = model.engine
    assert isinstance(engine, SpeakerEncoder)
    job = await asyncio.to_thread(engine.prepare_embedding, clips, field)
    vector: embeddings.Vector = await model.run(job)
    return vector


class SpeakerEncoderServicer(conversion_pb2_grpc.SpeakerEncoderServicer):
    def __init__(self, pool: ModelPool, limits: LimitsConfig) -> None:
        self._pool = pool
        self._limits = limits

    async def Embed(
        self, request: conversion_pb2.EmbedRequest, context: Context
    ) -> conversion_pb2.EmbedResponse:
        rid = request_id(request.request_id)
        model = encoder_model(self._pool, request.model)
        clips = await decode_clips(request.clips, "clips", self._limits.max_audio_seconds)
        vector = await embed(model, clips)
        engine = model.engine
        assert isinstance(engine, SpeakerEncoder)
        return conversion_pb2.EmbedResponse(
            request_id=rid,
            model=model.id,
            embedding=embeddings.to_proto(vector, engine.embedding, model.id),
            audio_duration_ms=sum(c.duration_s for c in clips) * 1000,
        )
