"""Domain errors raised where a problem is found, mapped to gRPC statuses in one place.

Code anywhere in the mesh raises one of these with what was wrong and what is
allowed; `to_rpc_status` turns it into a `google.rpc.Status` with rich details
(BadRequest field violations, QuotaFailure for limits) that the interceptor sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2


@dataclass
class FieldViolation:
    """One bad field of a request: its path (e.g. "audio.format.sample_rate_hz") and why."""

    field: str
    description: str


class SpeechmeshError(Exception):
    """Base of every error a client may see; carries its gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        """Rich error details attached to the status (none by default)."""
        return []


class InvalidArgument(SpeechmeshError):
    """The request is malformed: names the offending field(s)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}" if field else description)
        self.violations = [FieldViolation(field, description)]

    def details(self) -> list[any_pb2.Any]:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        return [packed]


class NotFound(SpeechmeshError):
    """An unknown model, voice or graph."""

    code = grpc.StatusCode.NOT_FOUND


@dataclass
class LimitExceeded(SpeechmeshError):
    """A configured limit was hit: names the limit, its value and what was asked."""

    limit: str
    allowed: float | int
    requested: float | int
    unit: str = ""
    hint: str = ""
    """What to do instead, appended to the message."""
    code: grpc.StatusCode = field(default=grpc.StatusCode.RESOURCE_EXHAUSTED, init=False)

    def __post_init__(self) -> None:
        unit = f" {self.unit}" if self.unit else ""
        hint = f"; {self.hint}" if self.hint else ""
        super().__init__(
            f"limit {self.limit} is {self.allowed}{unit}; the request needs "
            f"{self.requested}{unit}{hint}"
        )

    def details(self) -> list[any_pb2.Any]:
        quota = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=self.limit, description=self.message
                )
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(quota)
        return [packed]


class Overloaded(SpeechmeshError):
    """The server has no room for more work right now; retry later or elsewhere."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(SpeechmeshError):
    """The system is not in a state to serve this: e.g. a model's weights are missing."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(SpeechmeshError):
    """Temporarily unable to serve: the model is still loading or the server drains."""

    code = grpc.StatusCode.UNAVAILABLE


class IdleTimeout(SpeechmeshError):
    """A client went quiet on a stream for longer than the server waits."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(SpeechmeshError):
    """Missing or wrong credentials."""

    code = grpc.StatusCode.UNAUTHENTICATED


def to_rpc_status(error: SpeechmeshError) -> status_pb2.Status:
    """The google.rpc.Status (code, message, details) for a domain error."""
    return status_pb2.Status(
        code=getattr(code_pb2, error.code.name),
        message=error.message,
        details=error.details(),
    )
