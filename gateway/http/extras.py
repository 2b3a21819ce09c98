"""The mesh's routes beyond OpenAI's, in Harmony Speech Engine's JSON shapes.

Audio travels base64-encoded in JSON (`input_audio`, `source_audio`, `target_audio`;
any container the mesh reads, told from its first bytes), results come back as
`{"id", "model", "created", "data"}` with `data` base64 too. A speaker embedding's
`data` is its SpeakerEmbedding message, serialized, so it keeps the family tag that
the services check and goes back in as `target_embedding` unchanged.

- POST /v1/embed/speaker: SpeakerEncoder/Embed
- POST /v1/voice/convert: VoiceConversion/Convert
- POST /v1/audio/vad: VoiceActivity/Detect (speech segments in seconds)
- POST /v1/audio/restore: AudioRestoration/Restore
- POST /v1/graphs/{name}: Orchestrator/RunGraph; inputs are orchestrator `Value`s in
  protobuf's JSON mapping, and each RunGraphResponse leaves as one server-sent event
  in the same mapping, as it comes.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict

from speechmesh.conversion.v1 import conversion_pb2
from speechmesh.gateway.http.errors import ApiError, from_rpc
from speechmesh.gateway.http.mesh import Mesh, opened
from speechmesh.gateway.http.payloads import audio_payload, embedding_payload
from speechmesh.gateway.http.speech import Format, output_format, sse
from speechmesh.orchestrator.v1 import orchestrator_pb2
from speechmesh.vad.v1 import vad_pb2

router = APIRouter()


class OutputOptions(BaseModel):
    """How audio comes back: one of OpenAI's response formats, at a rate (0: the model's)."""

    format: Format = "wav"
    sample_rate: int | None = None


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = ""


class EmbedSpeakerRequest(_Request):
    input_audio: str


class VoiceConversionRequest(_Request):
    source_audio: str
    target_audio: str | None = None
    target_embedding: str | None = None
    output_options: OutputOptions = OutputOptions()


class DetectVoiceActivityRequest(_Request):
    input_audio: str


class RestoreAudioRequest(_Request):
    input_audio: str
    output_options: OutputOptions = OutputOptions()


def _result(request_id: str, model: str, **fields: Any) -> JSONResponse:
    return JSONResponse({"id": request_id, "model": model, "created": int(time.time()), **fields})


def _audio_result(response: Any) -> JSONResponse:
    data = base64.b64encode(response.audio.data).decode()
    return _result(response.request_id, response.model, data=data)


@router.post("/v1/embed/speaker", summary="Speaker embedding (Harmony Speech Engine)")
async def embed_speaker(body: EmbedSpeakerRequest, request: Request) -> JSONResponse:
    mesh: Mesh = request.app.state.mesh
    response = await mesh.encoder.Embed(
        conversion_pb2.EmbedRequest(
            model=mesh.model_id(body.model), clips=[audio_payload(body.input_audio, "input_audio")]
        ),
        **mesh.options(request),
    )
    embedding = response.embedding
    return _result(
        response.request_id,
        response.model,
        data=base64.b64encode(embedding.SerializeToString()).decode(),
        model_family=embedding.model_family,
        size=len(embedding.values),
    )


@router.post("/v1/voice/convert", summary="Voice conversion (Harmony Speech Engine)")
async def convert_voice(body: VoiceConversionRequest, request: Request) -> JSONResponse:
    mesh: Mesh = request.app.state.mesh
    convert = conversion_pb2.ConvertRequest(
        model=mesh.model_id(body.model),
        source=audio_payload(body.source_audio, "source_audio"),
        output_format=output_format(body.output_options.format, body.output_options.sample_rate),
    )
    if body.target_embedding:
        convert.target_embedding.CopyFrom(
            embedding_payload(body.target_embedding, "target_embedding")
        )
    elif body.target_audio:
        convert.target_audio.CopyFrom(audio_payload(body.target_audio, "target_audio"))
    else:
        raise ApiError(400, "give target_audio or target_embedding", param="target_audio")
    return _audio_result(await mesh.conversion.Convert(convert, **mesh.options(request)))


@router.post("/v1/audio/vad", summary="Voice activity (Harmony Speech Engine)")
async def detect_voice_activity(body: DetectVoiceActivityRequest, request: Request) -> JSONResponse:
    mesh: Mesh = request.app.state.mesh
    response = await mesh.vad.Detect(
        vad_pb2.DetectRequest(
            model=mesh.model_id(body.model), audio=audio_payload(body.input_audio, "input_audio")
        ),
        **mesh.options(request),
    )
    segments = [{"start": s.start_ms / 1000, "end": s.end_ms / 1000} for s in response.segments]
    return _result(
        response.request_id,
        response.model,
        speech_activity=bool(segments),
        timestamps=segments,
        duration=response.total_samples / response.sample_rate_hz if response.sample_rate_hz else 0,
    )


@router.post("/v1/audio/restore", summary="Speech restoration: denoise, enhance")
async def restoreaudio_payload(body: RestoreAudioRequest, request: Request) -> JSONResponse:
    mesh: Mesh = request.app.state.mesh
    response = await mesh.restoration.Restore(
        conversion_pb2.RestoreRequest(
            model=mesh.model_id(body.model),
            audio=audio_payload(body.input_audio, "input_audio"),
            output_format=output_format(
                body.output_options.format, body.output_options.sample_rate
            ),
        ),
        **mesh.options(request),
    )
    return _audio_result(response)


class GraphRequest(BaseModel):
    """A graph run: inputs by name ({"text": {"text": "..."}}, {"audio": {"audio":
    {"format": {...}, "data": "<base64>"}}}) and the format of audio outputs."""

    inputs: dict[str, dict[str, Any]] = {}
    output_format: dict[str, Any] = {}


def _parse(message: Any, value: dict[str, Any], param: str) -> Any:
    try:
        return json_format.ParseDict(value, message)
    except json_format.ParseError as error:
        raise ApiError(400, f"{param}: {error}", param=param) from None


@router.post("/v1/graphs/{name}", summary="Run an orchestrator graph (server-sent events)")
async def run_graph(name: str, body: GraphRequest, request: Request) -> StreamingResponse:
    mesh: Mesh = request.app.state.mesh
    run = orchestrator_pb2.RunGraphRequest(graph_name=name)
    for key, value in body.inputs.items():
        _parse(run.inputs[key], value, f"inputs.{key}")
    _parse(run.output_format, body.output_format, "output_format")
    responses = await opened(mesh.orchestrator.RunGraph(run, **mesh.options(request)))
    return StreamingResponse(_events(responses), media_type="text/event-stream")


async def _events(responses: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        async for response in responses:
            yield sse(json_format.MessageToDict(response))
    except grpc.aio.AioRpcError as error:
        yield sse({"type": "error", **from_rpc(error).body()})
