"""The request id of the call being served, shared by logs, responses and outgoing calls.

The interceptor sets it from the `x-request-id` metadata key, or generates one; a
servicer passes the request message's own `request_id` field to `request_id()`,
which prefers metadata, then the field, then the generated id.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID_METADATA = "x-request-id"
MAX_REQUEST_ID_CHARS = 128


@dataclass(frozen=True)
class _CallId:
    value: str
    from_metadata: bool


_current: ContextVar[_CallId | None] = ContextVar("speechmesh_request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def bind_request_id(metadata_value: str | None) -> str:
    """Starts a call's request id; returns the id in force."""
    if metadata_value:
        call_id = _CallId(metadata_value[:MAX_REQUEST_ID_CHARS], True)
    else:
        call_id = _CallId(new_request_id(), False)
    _current.set(call_id)
    return call_id.value


def request_id(field_value: str = "") -> str:
    """The id to put in responses: metadata wins, then the request's field, then generated."""
    call_id = _current.get()
    if call_id is None:
        return field_value[:MAX_REQUEST_ID_CHARS] or new_request_id()
    if call_id.from_metadata or not field_value:
        return call_id.value
    _current.set(_CallId(field_value[:MAX_REQUEST_ID_CHARS], True))
    return field_value[:MAX_REQUEST_ID_CHARS]
