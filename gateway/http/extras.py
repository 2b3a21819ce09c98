"""The mesh's routes beyond OpenAI's: orchestrator graphs (more to come in this module).

POST /v1/graphs/{name} runs a named graph: its inputs are orchestrator `Value`s in
protobuf's JSON mapping, and the response streams each RunGraphResponse as one
server-sent event in the same mapping, as it comes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from google.protobuf import json_format
from pydantic import BaseModel

from speechmesh.gateway.http.errors import ApiError, from_rpc
from speechmesh.gateway.http.mesh import Mesh, opened
from speechmesh.gateway.http.speech import sse
from speechmesh.orchestrator.v1 import orchestrator_pb2

router = APIRouter()


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
