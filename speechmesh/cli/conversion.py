"""`speechmesh embed`, `restore` and `convert`: clients of the conversion service."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from speechmesh.audio.v1 import audio_pb2
from speechmesh.cli.common import (
    ApiKeyOption,
    CaFileOption,
    audio_format_for,
    call_metadata,
    channel,
    rpc_errors,
)
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

console = Console()
DEFAULT_ADDRESS = "127.0.0.1:50064"

AddressOption = typer.Option(
    DEFAULT_ADDRESS, "--address", "-a", envvar="SPEECHMESH_ADDRESS", help="host:port to call"
)
RateOption = typer.Option(0, "--rate", help="sample rate of raw .pcm/.ulaw input, Hz")


def read_audio(path: Path, rate: int) -> audio_pb2.Audio:
    return audio_pb2.Audio(format=audio_format_for(path, rate), data=path.read_bytes())


def embed(
    files: list[Path] = typer.Argument(
        ..., exists=True, dir_okay=False, help="recordings of one voice"
    ),
    model: str = typer.Option("", "--model", "-m", help="encoder model id (default: server's)"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="also save the embedding as JSON (for convert --target)"
    ),
    rate: int = RateOption,
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """Print the speaker embedding of one voice from one or more recordings, as JSON."""
    request = conversion_pb2.EmbedRequest(model=model, clips=[read_audio(f, rate) for f in files])
    with rpc_errors(), channel(address, ca_file) as chan:
        response = conversion_pb2_grpc.SpeakerEncoderStub(chan).Embed(
            request, metadata=call_metadata(api_key), timeout=600
        )
    text = json.dumps(MessageToDict(response.embedding))
    if output is not None:
        output.write_text(text + "\n")
    print(text)
