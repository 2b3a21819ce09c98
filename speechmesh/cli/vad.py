"""`speechmesh vad FILE`: find the speech in an audio file, whole or as a live stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from speechmesh.audio.v1 import audio_pb2
from speechmesh.cli.common import (
    AddressOption,
    ApiKeyOption,
    CaFileOption,
    audio_chunks,
    audio_format_for,
    call_metadata,
    channel,
    rpc_errors,
)
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

console = Console()


def vad(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="audio file"),
    as_json: bool = typer.Option(False, "--json", help="print responses as JSON"),
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    ca_file: Path | None = CaFileOption,
    model: str = typer.Option("", "--model", "-m", help="VAD model id (default: the server's)"),
    rate: int = typer.Option(0, "--rate", help="sample rate of a raw .pcm/.ulaw file, Hz"),
    stream: bool = typer.Option(
        False, "--stream", help="send the file as a stream (wav or raw) and print live events"
    ),
    realtime: bool = typer.Option(False, "--realtime", help="with --stream: send at real time"),
    threshold: float | None = typer.Option(None, help="speech probability threshold (0-1)"),
    min_speech_ms: int | None = typer.Option(None, help="shortest speech kept, ms"),
    min_silence_ms: int | None = typer.Option(None, help="silence that ends speech, ms"),
    speech_pad_ms: int | None = typer.Option(None, help="padding around segments, ms"),
) -> None:
    """Print the speech segments of FILE (wav, flac, ogg/opus, raw pcm or mu-law)."""
    options = vad_pb2.VadOptions(
        threshold=threshold,
        min_speech_duration_ms=min_speech_ms,
        min_silence_duration_ms=min_silence_ms,
        speech_pad_ms=speech_pad_ms,
    )
    fmt = audio_format_for(file, rate)
    metadata = call_metadata(api_key)
    with rpc_errors(), channel(address, ca_file) as chan:
        stub = vad_pb2_grpc.VoiceActivityStub(chan)
        if stream:
            config = vad_pb2.StreamingDetectConfig(model=model, format=fmt, options=options)
            requests = _stream_requests(file, config, realtime)
            for response in stub.StreamingDetect(requests, metadata=metadata):
                _print_stream_response(response, as_json)
            return
        request = vad_pb2.DetectRequest(
            model=model, audio=audio_pb2.Audio(format=fmt, data=file.read_bytes()), options=options
        )
        response = stub.Detect(request, metadata=metadata, timeout=600)
    if as_json:
        print(json.dumps(MessageToDict(response), indent=2))
        return
    _print_segments(file, response)


def _stream_requests(
    file: Path, config: vad_pb2.StreamingDetectConfig, realtime: bool
) -> Iterator[vad_pb2.StreamingDetectRequest]:
    yield vad_pb2.StreamingDetectRequest(config=config)
    for data in audio_chunks(file, config.format, realtime):
        yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=data))


def _print_stream_response(response: vad_pb2.StreamingDetectResponse, as_json: bool) -> None:
    if as_json:
        print(json.dumps(MessageToDict(response)), flush=True)
        return
    rate = response.sample_rate_hz or 1
    if response.end_of_stream:
        console.print(f"end of stream: {response.processed_samples / rate:.3f} s processed")
        return
    event, segment = response.event, response.event.segment
    decided = f"(decided at {event.decided_at_sample / rate:.3f} s)"
    if event.type == vad_pb2.SPEECH_EVENT_TYPE_START:
        console.print(f"speech start {segment.start_ms / 1000:.3f} s {decided}")
    else:
        console.print(
            f"speech end   {segment.start_ms / 1000:.3f} – {segment.end_ms / 1000:.3f} s {decided}"
        )


def _print_segments(file: Path, response: vad_pb2.DetectResponse) -> None:
    title = f"{file.name}: {len(response.segments)} speech segment(s) ({response.model})"
    table = Table(title=title)
    for column in ("#", "start s", "end s", "length s"):
        table.add_column(column, justify="right")
    for index, segment in enumerate(response.segments, 1):
        table.add_row(
            str(index),
            f"{segment.start_ms / 1000:.3f}",
            f"{segment.end_ms / 1000:.3f}",
            f"{(segment.end_ms - segment.start_ms) / 1000:.3f}",
        )
    console.print(table)
