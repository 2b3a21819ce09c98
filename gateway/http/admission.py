"""What every HTTP request passes before a route reads it: its API key and its size,
and the request id it gets.

Both are checked before the body is read, so a caller without a key, or with a body
over limits.max_message_bytes, costs no more than its headers. The key is checked with
the runtime's verifier from the same auth config as the gRPC port (failing closed:
auth on and no key read means the gateway does not start), and the gRPC call behind
the route checks it again. Health and the API's own documentation need no key, as
gRPC health and reflection need none. A request without `x-request-id` gets one (the
runtime's kind), which its gRPC call carries and its response echoes, so one id names
the request in the HTTP reply, the gateway's logs and traces, and the backends'.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from speechmesh.gateway.http.errors import ApiError
from speechmesh.runtime.auth import ApiKeyVerifier
from speechmesh.runtime.errors import Unauthenticated
from speechmesh.runtime.requests import MAX_REQUEST_ID_CHARS, REQUEST_ID_METADATA, new_request_id

OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json"})


class Admission:
    """ASGI middleware: 401 without a valid key, 413 for a body over the limit."""

    def __init__(self, app: ASGIApp, verifier: ApiKeyVerifier | None, max_body_bytes: int) -> None:
        self.app = app
        self.verifier = verifier
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get(REQUEST_ID_METADATA, "")[:MAX_REQUEST_ID_CHARS] or new_request_id()
        scope = {**scope, "headers": [*_without_request_id(scope["headers"]), _header(rid)]}
        send = _echoing(send, rid)
        refusal = self._refusal(scope["path"], headers)
        if refusal is not None:
            await _respond(send, refusal)
            return
        await self.app(scope, *self._limited(receive, send))

    def _refusal(self, path: str, headers: dict[str, str]) -> ApiError | None:
        if self.verifier is not None and path not in OPEN_PATHS:
            try:
                self.verifier.verify(headers.get("authorization"))
            except Unauthenticated as error:
                return ApiError(401, str(error), code="invalid_api_key")
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large(int(length))
        return None

    def _too_large(self, size: int) -> ApiError:
        return ApiError(
            413,
            f"the request body of {size} bytes exceeds max_message_bytes "
            f"({self.max_body_bytes} bytes)",
            code="max_message_bytes",
        )

    def _limited(self, receive: Receive, send: Send) -> tuple[Receive, Send]:
        """A body without a length is counted as it arrives; past the limit the client
        gets 413, and the route sees a disconnect and whatever it sends is dropped."""
        state: dict[str, Any] = {"received": 0, "refused": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body_bytes:
                    if not state["started"]:
                        state["refused"] = True
                        await _respond(send, self._too_large(state["received"]))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return
            state["started"] = True
            await send(message)

        return limited_receive, guarded_send


def _header(rid: str) -> tuple[bytes, bytes]:
    return (REQUEST_ID_METADATA.encode(), rid.encode("latin-1", "replace"))


def _without_request_id(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.decode("latin-1").lower() != REQUEST_ID_METADATA]


def _echoing(send: Send, rid: str) -> Send:
    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), _header(rid)]}
        await send(message)

    return send_with_id


async def _respond(send: Send, error: ApiError) -> None:
    await error.response()({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
