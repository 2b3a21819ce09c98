"""speechmesh.conversion.v1.AudioRestoration: Restore and StreamingRestore."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.runtime.audio import AudioSpec, Encoding, decode_request_audio
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.pool import HostedModel, ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.streams import config_first
from speechmesh.runtime.telemetry import REAL_TIME_FACTOR
from speechmesh.services.conversion.outputs import (
    StreamEncoder,
    check_reply_fits,
    encode_whole,
    output_spec,
    relay_audio,
    response_format,
)
from speechmesh.services.conversion.restoration.contract import (
    RESTORATION_SERVICE,
    RestorationParams,
    Restorer,
    restoration_params,
)
from speechmesh.services.conversion.restoration.run import (
    RestorationRun,
    restore_in_segments,
)


def _engine(model: HostedModel) -> Restorer:
    engine = model.engine
    assert isinstance(engine, Restorer)
    return engine


async def open_run(
    model: HostedModel, spec: AudioSpec, params: RestorationParams
) -> RestorationRun:
    # Opening a stream may load a model state (DeepFilterNet: ~0.3 s): off the event loop.
    stream = await asyncio.to_thread(_engine(model).open_stream, params)
    return RestorationRun(model, stream, spec, params)


class AudioRestorationServicer(conversion_pb2_grpc.AudioRestorationServicer):
    def __init__(self, pool: ModelPool, limits: LimitsConfig) -> None:
        self._pool = pool
        self._limits = limits

    async def Restore(
        self, request: conversion_pb2.RestoreRequest, context: Context
    ) -> conversion_pb2.RestoreResponse:
        rid = request_id(request.request_id)
        model = self._pool.get(request.model, RESTORATION_SERVICE)
        params = restoration_params(request.options, _engine(model), "options")
        out_spec = output_spec(request.output_format, "output_format", streaming=False)
        decoded = await decode_request_audio(request.audio, "audio", self._limits.max_audio_seconds)
        engine = _engine(model)
        check_reply_fits(
            out_spec,
            engine.sample_rate,
            decoded.duration_s,
            self._limits.max_message_bytes,
            "StreamingRestore",
        )
        started = time.perf_counter()
        if engine.segment_samples:
            # The original's whole-file segmentation (VoiceFixer: 30 s, no context).
            restored = await restore_in_segments(
                model, decoded.samples, decoded.sample_rate_hz, params
            )
        else:
            # The same path as StreamingRestore, so a file and its stream sound the same.
            run = await open_run(
                model, AudioSpec(Encoding.PCM_F32LE, decoded.sample_rate_hz, 1), params
            )
            try:
                parts = [await run.feed(decoded.samples.tobytes()), await run.finish()]
            finally:
                run.close()
            restored = np.concatenate(parts)
        REAL_TIME_FACTOR.labels(model.id, "restore").observe(
            (time.perf_counter() - started) / max(decoded.duration_s, 1e-9)
        )
        audio, total = await asyncio.to_thread(
            encode_whole, restored, engine.sample_rate, decoded.duration_s, out_spec
        )
        return conversion_pb2.RestoreResponse(
            request_id=rid, model=model.id, audio=audio, total_samples=total
        )

    async def StreamingRestore(
        self,
        request_iterator: AsyncIterator[conversion_pb2.StreamingRestoreRequest],
        context: Context,
    ) -> AsyncIterator[conversion_pb2.StreamingRestoreResponse]:
        config, payload = await config_first(request_iterator, self._limits.stream_idle_timeout_s)
        rid = request_id(config.request_id)
        model = self._pool.get(config.model, RESTORATION_SERVICE)
        params = restoration_params(config.options, _engine(model), "config.options")
        out_spec = output_spec(config.output_format, "config.output_format", streaming=True)
        spec = AudioSpec.from_proto(config.format, "config.format")
        run = await open_run(model, spec, params)
        try:
            out = StreamEncoder(out_spec, run.rate)
            fmt = response_format(out_spec, out.rate)
            chunks = (message.audio.data async for message in payload)
            relayed = relay_audio(
                run, chunks, out, spec.sample_rate_hz, self._limits.max_stream_seconds
            )
            async for data, first, count in relayed:
                yield self._chunk(rid, fmt, data, first, count, run)
        finally:
            run.close()
        yield conversion_pb2.StreamingRestoreResponse(
            request_id=rid, format=fmt, processed_samples=run.samples_in, end_of_stream=True
        )

    @staticmethod
    def _chunk(
        rid: str,
        fmt: audio_pb2.AudioFormat,
        data: bytes,
        first: int,
        count: int,
        run: RestorationRun,
    ) -> conversion_pb2.StreamingRestoreResponse:
        return conversion_pb2.StreamingRestoreResponse(
            request_id=rid,
            audio=audio_pb2.AudioChunk(data=data, sample_offset=first, num_samples=count),
            format=fmt,
            processed_samples=run.samples_in,
        )
