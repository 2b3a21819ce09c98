"""speechmesh.conversion.v1.VoiceConversion: Convert and StreamingConvert on OpenVoice."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.runtime.audio import AudioSpec, decode_request_audio, resample
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.errors import InvalidArgument
from speechmesh.runtime.numbers import number_option
from speechmesh.runtime.pool import HostedModel, ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.streams import config_first
from speechmesh.runtime.telemetry import REAL_TIME_FACTOR
from speechmesh.services.conversion import embeddings
from speechmesh.services.conversion.conversion.contract import CONVERSION_SERVICE
from speechmesh.services.conversion.conversion.run import ConversionRun, convert_samples, engine_of
from speechmesh.services.conversion.encoder.servicer import embed
from speechmesh.services.conversion.outputs import (
    StreamEncoder,
    check_reply_fits,
    encode_whole,
    output_spec,
    relay_audio,
    response_format,
)

DEFAULT_TAU = 0.3
MAX_TAU = 10.0


def conversion_options(options: conversion_pb2.ConversionOptions, field: str) -> tuple[float, int]:
    """(tau, seed) from the request's options; an unset seed is drawn at random."""
    tau = options.tau if options.HasField("tau") else DEFAULT_TAU
    tau = number_option(tau, f"{field}.tau", at_least=0.0, at_most=MAX_TAU)
    return tau, options.seed if options.HasField("seed") else secrets.randbits(63)


async def target_vector(model: HostedModel, message: Any, field: str, limits: LimitsConfig) -> Any:
    """The target voice of a request or config: made from audio by the converter, or a
    checked embedding (for converters that take one)."""
    which = message.WhichOneof("target")
    prefix = f"{field}." if field else ""
    engine = engine_of(model)
    if which == "target_embedding":
        if not engine.takes_target_embedding:
            raise InvalidArgument(
                f"{prefix}target_embedding",
                f"{engine.family} conditions on the target's audio, not an embedding: "
                "give target_audio",
            )
        return embeddings.from_proto(
            message.target_embedding, engine.embedding, f"{prefix}target_embedding"
        )
    if which == "target_audio":
        field = f"{prefix}target_audio"
        clip = await decode_request_audio(message.target_audio, field, limits.max_audio_seconds)
        job = await asyncio.to_thread(engine.prepare_target, [clip], field)
        return await model.run(job)
    raise InvalidArgument(f"{prefix}target", "is required: give target_audio or target_embedding")


def source_vector(model: HostedModel, message: Any, prefix: str) -> embeddings.Vector | None:
    """The source voice when the request gives it (a stored voice or an embedding), else None."""
    engine = engine_of(model)
    given = message.HasField("source_embedding")
    if message.source_voice:
        if given:
            raise InvalidArgument(
                f"{prefix}source_voice", "give source_voice or source_embedding, not both"
            )
        return engine.voice_embedding(message.source_voice)
    if not given:
        return None
    return embeddings.from_proto(
        message.source_embedding, engine.embedding, f"{prefix}source_embedding"
    )


class VoiceConversionServicer(conversion_pb2_grpc.VoiceConversionServicer):
    def __init__(self, pool: ModelPool, limits: LimitsConfig) -> None:
        self._pool = pool
        self._limits = limits

    async def Convert(
        self, request: conversion_pb2.ConvertRequest, context: Context
    ) -> conversion_pb2.ConvertResponse:
        rid = request_id(request.request_id)
        model = self._pool.get(request.model, CONVERSION_SERVICE)
        engine = engine_of(model)
        tau, seed = conversion_options(request.options, "options")
        out_spec = output_spec(request.output_format, "output_format", streaming=False)
        source = source_vector(model, request, "")
        target = await target_vector(model, request, "", self._limits)
        decoded = await decode_request_audio(
            request.source, "source", self._limits.max_audio_seconds
        )
        # The converted audio lasts as long as the source.
        check_reply_fits(
            out_spec,
            engine.sample_rate,
            decoded.duration_s,
            self._limits.max_message_bytes,
            "StreamingConvert",
        )
        if source is None:
            source = await embed(model, [decoded], "source")
        started = time.perf_counter()
        samples = await asyncio.to_thread(
            resample, decoded.samples, decoded.sample_rate_hz, engine.sample_rate
        )
        noise = engine.noise_source(seed)
        converted = await convert_samples(model, samples, source, target, tau, noise)
        REAL_TIME_FACTOR.labels(model.id, "convert").observe(
            (time.perf_counter() - started) / max(decoded.duration_s, 1e-9)
        )
        audio, total = await asyncio.to_thread(
            encode_whole, converted, engine.sample_rate, decoded.duration_s, out_spec
        )
        return conversion_pb2.ConvertResponse(
            request_id=rid, model=model.id, audio=audio, total_samples=total
        )

    async def StreamingConvert(
        self,
        request_iterator: AsyncIterator[conversion_pb2.StreamingConvertRequest],
        context: Context,
    ) -> AsyncIterator[conversion_pb2.StreamingConvertResponse]:
        config, payload = await config_first(request_iterator, self._limits.stream_idle_timeout_s)
        rid = request_id(config.request_id)
        model = self._pool.get(config.model, CONVERSION_SERVICE)
        tau, seed = conversion_options(config.options, "config.options")
        out_spec = output_spec(config.output_format, "config.output_format", streaming=True)
        source = source_vector(model, config, "config.")
        spec = AudioSpec.from_proto(config.format, "config.format")
        target = await target_vector(model, config, "config", self._limits)
        run = ConversionRun(model, spec, target, source, tau, engine_of(model).noise_source(seed))
        out = StreamEncoder(out_spec, run.rate)
        fmt = response_format(out_spec, out.rate)
        chunks = (message.audio.data async for message in payload)
        relayed = relay_audio(
            run, chunks, out, spec.sample_rate_hz, self._limits.max_stream_seconds
        )
        async for data, first, count in relayed:
            yield self._chunk(rid, fmt, data, first, count, run)
        yield conversion_pb2.StreamingConvertResponse(
            request_id=rid, format=fmt, processed_samples=run.samples_in, end_of_stream=True
        )

    @staticmethod
    def _chunk(
        rid: str,
        fmt: audio_pb2.AudioFormat,
        data: bytes,
        first: int,
        count: int,
        run: ConversionRun,
    ) -> conversion_pb2.StreamingConvertResponse:
        return conversion_pb2.StreamingConvertResponse(
            request_id=rid,
            audio=audio_pb2.AudioChunk(data=data, sample_offset=first, num_samples=count),
            format=fmt,
            processed_samples=run.samples_in,
        )
