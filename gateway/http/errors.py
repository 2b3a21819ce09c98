"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Every failure of a route is a gRPC status from the mesh or a translation problem found
here; both leave as the HTTP status OpenAI's clients expect. The gRPC status's rich
details decide what plain codes cannot: the field of a BadRequest is the `param`, and
a QuotaFailure on a size limit is 413 while any other exhausted resource is 429.
"""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from starlette.exceptions import HTTPException

# Limits on how big a request is (413); every other RESOURCE_EXHAUSTED is load (429).
SIZE_LIMITS = frozenset({"max_message_bytes", "max_audio_seconds", "max_stream_seconds"})

_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable"),
    # Missing weights: the model exists and cannot serve, as a server that is down.
    grpc.StatusCode.FAILED_PRECONDITION: (503, "service_unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout"),
    grpc.StatusCode.CANCELLED: (499, "cancelled"),
}
# How the router words a model it cannot find ("model 'x' is not served by the mesh ...",
# "no model for ... is deployed"); a voice or graph not found is another NOT_FOUND.
_MODEL_NOT_FOUND = ("model ", "no model ")
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}
_TYPES |= {405: "invalid_request_error", 413: "request_too_large", 503: "service_unavailable"}


class ApiError(Exception):
    """A failure a route found itself, before or after its gRPC call."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind or _TYPES.get(status, "api_error")

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.kind, "param": self.param}
        return {"error": {**error, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def from_rpc(error: grpc.aio.AioRpcError) -> ApiError:
    """The HTTP error of a failed gRPC call, with its field and the limit it hit."""
    status, kind = _STATUS.get(error.code(), (500, "api_error"))
    param = code = None
    for detail in _details(error):
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                param = bad.field_violations[0].field
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            subjects = {violation.subject for violation in quota.violations}
            if subjects & SIZE_LIMITS:
                status = 413
            code = next(iter(sorted(subjects)), None)
    details = error.details() or ""
    if error.code() == grpc.StatusCode.NOT_FOUND and details.startswith(_MODEL_NOT_FOUND):
        code = "model_not_found"
    elif error.code() == grpc.StatusCode.UNAUTHENTICATED:
        code = "invalid_api_key"
    if status == 413:
        kind = _TYPES[413]
    message = details or error.code().name
    return ApiError(status, message, param=param, code=code, kind=kind)


def _details(error: grpc.aio.AioRpcError) -> list[Any]:
    # rpc_status reads the google.rpc.Status the mesh puts in the trailers.
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    return list(status.details) if status is not None else []


def install(app: FastAPI) -> None:
    """Every error of the app in OpenAI's shape, FastAPI's own included."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(grpc.aio.AioRpcError)
    async def rpc_error(_: Request, error: grpc.aio.AioRpcError) -> JSONResponse:
        return from_rpc(error).response()

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
        message = f"{'.'.join(location) or 'request'}: {first.get('msg', 'invalid request')}"
        return ApiError(400, message, param=".".join(location) or None).response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return ApiError(error.status_code, str(error.detail)).response()
