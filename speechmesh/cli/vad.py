"""`speechmesh vad FILE`: find the speech in an audio file."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from speechmesh.audio.v1 import audio_pb2
from speechmesh.cli.common import (
    AddressOption,
    ApiKeyOption,
    audio_format_for,
    call_metadata,
    channel,
    rpc_errors,
)
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

console = Console()


def vad(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="audio file"),
    as_json: bool = typer.Option(False, "--json", help="print the response as JSON"),
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    model: str = typer.Option("", "--model", "-m", help="VAD model id (default: the server's)"),
    rate: int = typer.Option(0, "--rate", help="sample rate of a raw .pcm/.ulaw file, Hz"),
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
    request = vad_pb2.DetectRequest(
        model=model,
        audio=audio_pb2.Audio(format=audio_format_for(file, rate), data=file.read_bytes()),
        options=options,
    )
    with rpc_errors(), channel(address) as chan:
        response = vad_pb2_grpc.VoiceActivityStub(chan).Detect(
            request, metadata=call_metadata(api_key), timeout=600
        )
    if as_json:
        print(
            json.dumps(MessageToDict(response, always_print_fields_with_no_presence=True), indent=2)
        )
        return
    table = Table(
        title=f"{file.name}: {len(response.segments)} speech segment(s) ({response.model})"
    )
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
