"""POST /v1/audio/transcriptions and /v1/audio/translations onto SpeechToText.

A whole upload is one Recognize call, its container told from its first bytes (any the
mesh reads: WAV, FLAC, MP3, AAC/M4A, Ogg, WebM). With `stream=true` the file is
decoded here (off the event loop, under max_audio_seconds, as the orchestrator does
with graph inputs) and streamed to StreamingRecognize; each final result leaves at once
as OpenAI's `transcript.text.delta`, and `transcript.text.done` carries the whole text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import grpc
import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from speechmesh.audio.v1 import audio_pb2
from speechmesh.gateway.http import captions
from speechmesh.gateway.http.errors import ApiError, from_rpc
from speechmesh.gateway.http.mesh import Mesh, opened
from speechmesh.gateway.http.speech import sse
from speechmesh.runtime import audio
from speechmesh.runtime.errors import SpeechmeshError
from speechmesh.stt.v1 import stt_pb2

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
Granularity = Literal["word", "segment"]
CHUNK_S = 0.2  # audio per StreamingRecognize message
_TASKS = {
    "transcribe": stt_pb2.RECOGNITION_TASK_TRANSCRIBE,
    "translate": stt_pb2.RECOGNITION_TASK_TRANSLATE,
}

router = APIRouter()


async def _upload(file: UploadFile) -> tuple[bytes, audio.Encoding]:
    data = await file.read()
    if not data:
        raise ApiError(400, "file: the uploaded file is empty", param="file")
    encoding = audio.detect_encoding(data)
    if encoding is None:
        raise ApiError(
            400,
            f"file: {file.filename or 'the upload'} is not audio the mesh reads (WAV, FLAC, "
            "MP3, AAC or M4A, Ogg Opus or Vorbis, WebM Opus)",
            param="file",
            code="invalid_file_format",
        )
    return data, encoding


def _options(
    task: str, language: str, prompt: str, temperature: float | None, granularities: set[str]
) -> stt_pb2.RecognitionOptions:
    options = stt_pb2.RecognitionOptions(
        language=language,
        task=_TASKS[task],
        initial_prompt=prompt,
        word_timestamps="word" in granularities,
    )
    if temperature is not None:
        options.temperatures.append(temperature)
    return options


async def _recognize(
    request: Request,
    task: str,
    file: UploadFile,
    model: str,
    language: str,
    prompt: str,
    temperature: float | None,
    response_format: ResponseFormat,
    granularities: set[str],
    stream: bool,
) -> Response:
    mesh: Mesh = request.app.state.mesh
    data, encoding = await _upload(file)
    options = _options(task, language, prompt, temperature, granularities)
    if stream:
        return await _stream(mesh, request, mesh.model_id(model), data, encoding, options)
    response = await mesh.stt.Recognize(
        stt_pb2.RecognizeRequest(
            model=mesh.model_id(model),
            audio=audio_pb2.Audio(format=audio_pb2.AudioFormat(encoding=int(encoding)), data=data),
            options=options,
        ),
        **mesh.options(request),
    )
    if response_format == "text":
        return PlainTextResponse(response.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(captions.srt(response.segments))
    if response_format == "vtt":
        return PlainTextResponse(captions.vtt(response.segments), media_type="text/vtt")
    if response_format == "verbose_json":
        return JSONResponse(captions.verbose_json(response, task, granularities))
    return JSONResponse({"text": response.text})


async def _stream(
    mesh: Mesh,
    request: Request,
    model_id: str,
    data: bytes,
    encoding: audio.Encoding,
    options: stt_pb2.RecognitionOptions,
) -> StreamingResponse:
    limit = mesh.config.limits.max_audio_seconds
    try:
        decoded = await asyncio.to_thread(
            audio.decode, data, audio.AudioSpec(encoding), "file", max_duration_s=limit
        )
    except SpeechmeshError as error:
        raise ApiError(400, str(error), param="file") from None
    config = stt_pb2.StreamingRecognizeConfig(
        model=model_id,
        format=audio_pb2.AudioFormat(
            encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=decoded.sample_rate_hz
        ),
        options=options,
    )
    call = mesh.stt.StreamingRecognize(
        _requests(config, decoded.samples, decoded.sample_rate_hz), **mesh.options(request)
    )
    responses = await opened(call)
    return StreamingResponse(_events(responses), media_type="text/event-stream")


async def _requests(
    config: stt_pb2.StreamingRecognizeConfig, samples: np.ndarray, rate: int
) -> AsyncIterator[stt_pb2.StreamingRecognizeRequest]:
    yield stt_pb2.StreamingRecognizeRequest(config=config)
    step = max(1, int(rate * CHUNK_S))
    for start in range(0, len(samples), step):
        chunk = samples[start : start + step].astype("<f4").tobytes()
        yield stt_pb2.StreamingRecognizeRequest(audio=audio_pb2.AudioChunk(data=chunk))


async def _events(responses: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    texts: list[str] = []
    try:
        async for response in responses:
            for result in response.results:
                if result.is_final and result.alternatives:
                    text = result.alternatives[0].transcript.strip()
                    if text:
                        delta = f" {text}" if texts else text
                        texts.append(text)
                        yield sse({"type": "transcript.text.delta", "delta": delta})
    except grpc.aio.AioRpcError as error:
        yield sse({"type": "error", **from_rpc(error).body()})
        return
    yield sse({"type": "transcript.text.done", "text": " ".join(texts)})


Upload = Annotated[UploadFile, File(description="the audio: WAV, FLAC, MP3, AAC, Ogg, WebM")]
Model = Annotated[str, Form(description="a model id of the mesh, or an alias")]
Prompt = Annotated[str, Form()]
Temperature = Annotated[float | None, Form(ge=0.0, le=1.0)]
Format = Annotated[ResponseFormat, Form()]
Granularities = Annotated[list[Granularity], Form(alias="timestamp_granularities[]")]
Stream = Annotated[bool, Form()]


@router.post("/v1/audio/transcriptions", summary="Transcribe (audio.transcriptions.create)")
async def transcriptions(
    request: Request,
    file: Upload,
    model: Model,
    language: Annotated[str, Form()] = "",
    prompt: Prompt = "",
    temperature: Temperature = None,
    response_format: Format = "json",
    timestamp_granularities: Granularities = [],  # noqa: B006 - FastAPI copies defaults
    stream: Stream = False,
) -> Response:
    return await _recognize(
        request, "transcribe", file, model, language, prompt, temperature,
        response_format, set(timestamp_granularities), stream,
    )  # fmt: skip


@router.post("/v1/audio/translations", summary="Translate to English (audio.translations.create)")
async def translations(
    request: Request,
    file: Upload,
    model: Model,
    prompt: Prompt = "",
    temperature: Temperature = None,
    response_format: Format = "json",
    timestamp_granularities: Granularities = [],  # noqa: B006 - FastAPI copies defaults
    stream: Stream = False,
) -> Response:
    return await _recognize(
        request, "translate", file, model, "", prompt, temperature,
        response_format, set(timestamp_granularities), stream,
    )  # fmt: skip
