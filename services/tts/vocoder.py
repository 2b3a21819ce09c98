"""speechmesh.tts.v1.Vocoder: mel spectrograms to audio, for families that vocode
separately, through any hosted Vocoder.

A model that cannot vocode (any synthesizer that makes audio itself, such as Piper)
is INVALID_ARGUMENT on the `model` field, naming the vocoders the server has; a
server without any is NOT_FOUND when the request names no model. StreamingVocode
overlaps its windows by the vocoder's receptive field, so streamed audio equals the
whole spectrogram's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.audio import Encoding
from speechmesh.runtime.config import LimitsConfig
from speechmesh.runtime.errors import InvalidArgument, LimitExceeded, NotFound
from speechmesh.runtime.pool import HostedModel, ModelPool
from speechmesh.runtime.requests import request_id
from speechmesh.runtime.service import Context
from speechmesh.runtime.streams import config_first
from speechmesh.services.tts.engine import VOCODER, Vocoder
from speechmesh.services.tts.output import AudioOut, output_spec
from speechmesh.services.tts.tensors import mel_from_tensor
from speechmesh.services.tts.vocoding import MelStream, Window
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc


class VocoderServicer(tts_pb2_grpc.VocoderServicer):
    def __init__(self, pool: ModelPool, limits: LimitsConfig) -> None:
        self._pool = pool
        self._limits = limits

    def _vocoder(self, model_id: str) -> tuple[HostedModel, Vocoder]:
        vocoders = [m for m in self._pool.models if isinstance(m.engine, Vocoder)]
        names = ", ".join(m.id for m in vocoders) or "none"
        if not model_id and not vocoders:
            raise NotFound("this server hosts no vocoder model")
        hosted = {m.id: m for m in self._pool.models}
        if model_id in hosted and not isinstance(hosted[model_id].engine, Vocoder):
            raise InvalidArgument(
                "model",
                f"model {model_id!r} ({hosted[model_id].config.family}) does not vocode "
                f"spectrograms; vocoder models here: {names}",
            )
        model = self._pool.get(model_id, VOCODER)
        return model, model.engine  # type: ignore[return-value]

    def _check_frames(self, engine: Vocoder, frames: int, limit: float, name: str) -> None:
        seconds = frames * engine.samples_per_frame / engine.sample_rate_hz
        if seconds > limit:
            raise LimitExceeded(name, limit, round(seconds, 1), "s")

    async def Vocode(
        self, request: tts_pb2.VocodeRequest, context: Context
    ) -> tts_pb2.VocodeResponse:
        rid = request_id(request.request_id)
        model, engine = self._vocoder(request.model)
        spec = output_spec(request.output_format, Encoding.WAV, "output_format")
        mel = mel_from_tensor(request.mel, "mel", engine.n_mels, engine.mel_kind)
        self._check_frames(
            engine, mel.shape[1], self._limits.max_audio_seconds, "max_audio_seconds"
        )
        out = AudioOut(spec, engine.sample_rate_hz)
        out.add(engine.finish(await model.run(mel)))
        data = await asyncio.to_thread(out.whole)
        return tts_pb2.VocodeResponse(
            request_id=rid,
            model=model.id,
            audio=audio_pb2.Audio(format=out.format, data=data),
            total_samples=out.samples,
        )

    async def StreamingVocode(
        self, request_iterator: AsyncIterator[tts_pb2.StreamingVocodeRequest], context: Context
    ) -> AsyncIterator[tts_pb2.StreamingVocodeResponse]:
        config, payload = await config_first(request_iterator, self._limits.stream_idle_timeout_s)
        rid = request_id(config.request_id)
        model, engine = self._vocoder(config.model)
        spec = output_spec(config.output_format, Encoding.PCM_S16LE, "config.output_format")
        out = AudioOut(spec, engine.sample_rate_hz)
        frames = MelStream(engine.n_mels, engine.context_frames, engine.samples_per_frame)
        index = 0

        async def vocoded(window: Window | None) -> list[tts_pb2.StreamingVocodeResponse]:
            if window is None:
                return []
            audio = await model.run(window.mel)
            chunks = await asyncio.to_thread(out.stream, audio[window.keep_from : window.keep_to])
            return [
                tts_pb2.StreamingVocodeResponse(
                    request_id=rid,
                    audio=audio_pb2.AudioChunk(
                        data=c.data, sample_offset=c.sample_offset, num_samples=c.num_samples
                    ),
                    format=out.format,
                    processed_frames=frames.received,
                )
                for c in chunks
            ]

        async for message in payload:
            index += 1
            mel = mel_from_tensor(
                message.mel, f"requests[{index}].mel", engine.n_mels, engine.mel_kind
            )
            self._check_frames(
                engine,
                frames.received + mel.shape[1],
                self._limits.max_stream_seconds,
                "max_stream_seconds",
            )
            for response in await vocoded(frames.push(mel)):
                yield response
        for response in await vocoded(frames.finish()):
            yield response
        tail = await asyncio.to_thread(out.finish)
        last = tts_pb2.StreamingVocodeResponse(
            request_id=rid, format=out.format, processed_frames=frames.received, end_of_stream=True
        )
        if tail:
            last.audio.CopyFrom(audio_pb2.AudioChunk(data=tail, sample_offset=out.samples))
        yield last
