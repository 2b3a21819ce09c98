"""The gateway's HTTP app: OpenAI's audio routes, the mesh's extras, models, health, docs.

Every route is a translation onto a gRPC call of the gateway itself (`mesh.py`); the
app adds admission (key, body size), errors in OpenAI's shape, and the OpenAPI page
FastAPI generates at /docs.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2

from speechmesh.gateway.http import errors, extras, speech, transcriptions
from speechmesh.gateway.http.admission import Admission
from speechmesh.gateway.http.mesh import Mesh
from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.auth import ApiKeyVerifier

DESCRIPTION = """OpenAI-compatible speech routes in front of the speechmesh gateway.
Point an OpenAI SDK's base_url at `http://HOST:PORT/v1`; see docs/http.md."""


def build_app(mesh: Mesh, verifier: ApiKeyVerifier | None) -> FastAPI:
    app = FastAPI(title="speechmesh", description=DESCRIPTION, docs_url="/docs", redoc_url=None)
    app.state.mesh = mesh
    errors.install(app)
    app.add_middleware(
        Admission, verifier=verifier, max_body_bytes=mesh.config.limits.max_message_bytes
    )
    origins = mesh.config.gateway.http.cors_origins
    if origins:
        # Outside admission: a browser's preflight carries no key and gets its answer here.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id"],
        )
    app.include_router(speech.router)
    app.include_router(transcriptions.router)
    app.include_router(extras.router)
    app.add_api_route("/v1/models", list_models, methods=["GET"], summary="Models (models.list)")
    app.add_api_route("/health", health, methods=["GET"], summary="Whether the mesh serves")
    return app


def _model_entry(info: models_pb2.ModelInfo, name: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "speechmesh",
        "family": info.family,
        "service": info.service,
        "tasks": [models_pb2.Task.Name(task) for task in info.tasks],
        "state": models_pb2.ModelState.Name(info.state),
        "languages": list(info.languages),
        "voices": [voice.id for voice in info.voices],
    }


async def list_models(request: Request) -> JSONResponse:
    """OpenAI's model list: every model of the mesh, then each alias of a listed model."""
    mesh: Mesh = request.app.state.mesh
    listed = await mesh.models.ListModels(models_pb2.ListModelsRequest(), **mesh.options(request))
    by_id = {info.id: info for info in listed.models}
    data = [_model_entry(info, info.id) for info in listed.models]
    for alias, target in sorted(mesh.aliases.items()):
        if target in by_id:
            data.append({**_model_entry(by_id[target], alias), "alias_of": target})
    return JSONResponse({"object": "list", "data": data})


async def health(request: Request) -> JSONResponse:
    """200 while the gateway's gRPC health says SERVING (some backend reachable), else 503."""
    mesh: Mesh = request.app.state.mesh
    response = await mesh.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    serving = response.status == health_pb2.HealthCheckResponse.SERVING
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return JSONResponse({"status": status}, status_code=200 if serving else 503)
