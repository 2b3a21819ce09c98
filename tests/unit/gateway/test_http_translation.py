"""The HTTP listener's pure translations: captions from segments, and gRPC statuses to
OpenAI's errors (rich details included)."""

from __future__ import annotations

import grpc
import pytest
from grpc_status import rpc_status

from speechmesh.gateway.http import captions
from speechmesh.gateway.http.errors import from_rpc
from speechmesh.runtime.errors import InvalidArgument, LimitExceeded, NotFound, to_rpc_status
from speechmesh.stt.v1 import stt_pb2

SEGMENTS = [
    stt_pb2.Segment(text=" Hello there.", start_ms=0, end_ms=1250.4),
    stt_pb2.Segment(text="  ", start_ms=1250, end_ms=1300),  # nothing to show: no cue
    stt_pb2.Segment(text=" General Kenobi.", start_ms=3_723_004, end_ms=3_725_500),
]


def test_srt_numbers_cues_with_comma_milliseconds():
    assert captions.srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:01,250\nHello there.\n\n"
        "2\n01:02:03,004 --> 01:02:05,500\nGeneral Kenobi.\n"
    )


def test_vtt_has_its_header_and_dot_milliseconds():
    assert captions.vtt(SEGMENTS) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nHello there.\n\n"
        "01:02:03.004 --> 01:02:05.500\nGeneral Kenobi.\n"
    )


def test_verbose_json_gives_seconds_and_the_asked_granularities():
    response = stt_pb2.RecognizeResponse(
        text="Hello there.",
        language="en",
        duration_ms=1500,
        segments=SEGMENTS[:1],
        words=[stt_pb2.Word(word=" Hello", start_ms=0, end_ms=500)],
    )
    body = captions.verbose_json(response, "transcribe", {"word"})
    assert body["duration"] == 1.5 and "segments" not in body
    assert body["words"] == [{"word": "Hello", "start": 0.0, "end": 0.5}]
    body = captions.verbose_json(response, "translate", set())
    assert body["task"] == "translate" and "words" not in body
    assert body["segments"][0]["end"] == pytest.approx(1.2504)


class FailedCall(grpc.aio.AioRpcError):
    """An AioRpcError carrying the trailers a mesh server sends for a domain error."""

    def __init__(self, error) -> None:
        status = to_rpc_status(error)
        converted = rpc_status.to_status(status)
        super().__init__(
            converted.code,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(*converted.trailing_metadata),
            details=converted.details,
        )


@pytest.mark.parametrize(
    ("error", "status", "kind", "param", "code"),
    [
        (InvalidArgument("file", "not audio"), 400, "invalid_request_error", "file", None),
        (NotFound("model 'x' is not served"), 404, "not_found_error", None, "model_not_found"),
        (NotFound("voice 'v' is not a voice of model 'x'"), 404, "not_found_error", None, None),
        (
            LimitExceeded("max_audio_seconds", 10, 20, "s"),
            413,
            "request_too_large",
            None,
            "max_audio_seconds",
        ),
        (
            LimitExceeded("max_queue_size", 4, 5, "items"),
            429,
            "rate_limit_error",
            None,
            "max_queue_size",
        ),
    ],
)
def test_statuses_and_details_map_to_openai_errors(error, status, kind, param, code):
    api_error = from_rpc(FailedCall(error))
    assert api_error.status == status
    assert api_error.body() == {
        "error": {"message": str(error), "type": kind, "param": param, "code": code}
    }
