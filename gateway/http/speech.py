"""POST /v1/audio/speech: OpenAI's speech route onto TextToSpeech/StreamingSynthesize.

The body is audio as the service makes it, chunk by chunk (`stream_format: audio`), or
server-sent events carrying the chunks in base64 (`sse`); both come from the same
streaming call, whose container encodings (MP3, Ogg, ADTS, WAV, FLAC) are written so
that the chunks joined are one file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from speechmesh.audio.v1 import audio_pb2
from speechmesh.gateway.http.errors import from_rpc
from speechmesh.gateway.http.mesh import Mesh, opened
from speechmesh.gateway.http.payloads import audio_payload, embedding_payload
from speechmesh.tts.v1 import tts_pb2

# OpenAI's voices: a model without a voice of that name speaks with its default voice,
# so programs written for OpenAI run unchanged.
OPENAI_VOICES = frozenset(
    [
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "nova",
        "onyx",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    ]
)
# OpenAI's pcm is 24 kHz 16-bit little-endian mono; the service resamples to it.
PCM_RATE_HZ = 24000

FORMATS = {
    "mp3": (audio_pb2.AUDIO_ENCODING_MP3, 0, "audio/mpeg"),
    "opus": (audio_pb2.AUDIO_ENCODING_OGG_OPUS, 0, "audio/ogg; codecs=opus"),
    "aac": (audio_pb2.AUDIO_ENCODING_AAC, 0, "audio/aac"),
    "flac": (audio_pb2.AUDIO_ENCODING_FLAC, 0, "audio/flac"),
    "wav": (audio_pb2.AUDIO_ENCODING_WAV, 0, "audio/wav"),
    "pcm": (audio_pb2.AUDIO_ENCODING_PCM_S16LE, PCM_RATE_HZ, "audio/pcm"),
}
Format = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


def output_format(name: Format, rate_hz: int | None = None) -> audio_pb2.AudioFormat:
    """The AudioFormat of an OpenAI response_format (pcm: 24 kHz unless a rate is given)."""
    encoding, rate, _ = FORMATS[name]
    return audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate_hz or rate)


class SpeechRequest(BaseModel):
    """OpenAI's speech request (`instructions` is accepted; no mesh model takes any yet)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str
    voice: str | dict[str, str] = ""
    instructions: str | None = None
    response_format: Format = "mp3"
    speed: float | None = Field(default=None, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"
    # Harmony Speech Engine's speaker inputs, for the models that clone a voice.
    input_embedding: str | None = None
    input_audio: str | None = None


router = APIRouter()


async def _voice(mesh: Mesh, request: Request, model_id: str, voice: str | dict[str, str]) -> str:
    name = voice.get("id", "") if isinstance(voice, dict) else voice
    if name not in OPENAI_VOICES:
        return name
    info = await mesh.model_info(request, model_id)
    voices = {v.id for v in info.voices} if info is not None else set()
    return name if name in voices else ""


@router.post("/v1/audio/speech", summary="Speak text (OpenAI: audio.speech.create)")
async def speech(body: SpeechRequest, request: Request) -> StreamingResponse:
    mesh: Mesh = request.app.state.mesh
    model_id = mesh.model_id(body.model)
    media_type = FORMATS[body.response_format][2]
    options = tts_pb2.SynthesisOptions(voice=await _voice(mesh, request, model_id, body.voice))
    if body.speed is not None:
        options.speed = body.speed
    if body.input_embedding:
        options.speaker_embedding.CopyFrom(
            embedding_payload(body.input_embedding, "input_embedding")
        )
    elif body.input_audio:
        options.reference_audio.CopyFrom(audio_payload(body.input_audio, "input_audio"))
    call = mesh.tts.StreamingSynthesize(
        tts_pb2.StreamingSynthesizeRequest(
            model=model_id,
            text=body.input,
            options=options,
            output_format=output_format(body.response_format),
        ),
        **mesh.options(request),
    )
    responses = await opened(call)
    if body.stream_format == "sse":
        return StreamingResponse(_events(responses), media_type="text/event-stream")
    return StreamingResponse(_audio(responses), media_type=media_type)


async def _audio(responses: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async for response in responses:
        if response.WhichOneof("response") == "chunk" and response.chunk.audio.data:
            yield response.chunk.audio.data


def sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


async def _events(responses: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """OpenAI's speech events: speech.audio.delta per chunk, then speech.audio.done."""
    try:
        async for response in responses:
            if response.WhichOneof("response") == "chunk" and response.chunk.audio.data:
                audio = base64.b64encode(response.chunk.audio.data).decode()
                yield sse({"type": "speech.audio.delta", "audio": audio})
    except grpc.aio.AioRpcError as error:
        # The status line has left: the failure is an event of its own.
        yield sse({"type": "error", **from_rpc(error).body()})
        return
    yield sse({"type": "speech.audio.done"})
