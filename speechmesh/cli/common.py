"""What every client command shares: the channel, call metadata, audio files, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import soundfile as sf
import typer
from rich.console import Console

from speechmesh.audio.v1 import audio_pb2

# The gateway of the embedded mesh: one address for every service.
DEFAULT_ADDRESS = "127.0.0.1:50051"
API_KEY_ENV = "SPEECHMESH_API_KEY"
SUFFIX_ENCODINGS = {
    ".wav": audio_pb2.AUDIO_ENCODING_WAV,
    ".flac": audio_pb2.AUDIO_ENCODING_FLAC,
    ".ogg": audio_pb2.AUDIO_ENCODING_OGG_OPUS,
    ".opus": audio_pb2.AUDIO_ENCODING_OGG_OPUS,
    ".ulaw": audio_pb2.AUDIO_ENCODING_MULAW,
    ".pcm": audio_pb2.AUDIO_ENCODING_PCM_S16LE,
    ".raw": audio_pb2.AUDIO_ENCODING_PCM_S16LE,
}

err_console = Console(stderr=True)

AddressOption = typer.Option(
    DEFAULT_ADDRESS, "--address", "-a", envvar="SPEECHMESH_ADDRESS", help="host:port to call"
)
CaFileOption = typer.Option(
    None,
    "--ca-file",
    envvar="SPEECHMESH_CA_FILE",
    help="PEM CA bundle: call over TLS, trusting these roots",
)
ApiKeyOption = typer.Option(
    None, "--api-key", envvar=API_KEY_ENV, help="API key (sent as 'authorization: Bearer')"
)


def call_metadata(api_key: str | None) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {api_key}")] if api_key else []


def audio_format_for(path: Path, sample_rate_hz: int) -> audio_pb2.AudioFormat:
    """The AudioFormat of a file, from its suffix; raw files need the rate given."""
    encoding = SUFFIX_ENCODINGS.get(path.suffix.lower())
    if encoding is None:
        known = ", ".join(sorted(SUFFIX_ENCODINGS))
        raise typer.BadParameter(f"unknown audio file type {path.suffix!r} (known: {known})")
    raw = (audio_pb2.AUDIO_ENCODING_PCM_S16LE, audio_pb2.AUDIO_ENCODING_MULAW)
    if encoding in raw and not sample_rate_hz:
        raise typer.BadParameter(f"{path.name} is raw audio: give its --rate")
    return audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=sample_rate_hz)


def _bytes_per_second(file: Path, fmt: audio_pb2.AudioFormat) -> float:
    if fmt.encoding == audio_pb2.AUDIO_ENCODING_WAV:
        info = sf.info(str(file))
        return file.stat().st_size / max(info.duration, 1e-9)
    width = 1 if fmt.encoding == audio_pb2.AUDIO_ENCODING_MULAW else 2
    return fmt.sample_rate_hz * width


def audio_chunks(
    file: Path, fmt: audio_pb2.AudioFormat, realtime: bool, chunk_s: float = 0.1
) -> Iterator[bytes]:
    """The file's bytes in pieces of about chunk_s of audio, paced at real time if asked."""
    data = file.read_bytes()
    chunk = max(1, int(_bytes_per_second(file, fmt) * chunk_s))
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(data), chunk)):
        if realtime:
            time.sleep(max(0.0, started + index * chunk_s - time.monotonic()))
        yield data[offset : offset + chunk]


@contextmanager
def rpc_errors() -> Iterator[None]:
    """Prints a failed call's status and reason, and exits non-zero."""
    try:
        yield
    except grpc.RpcError as error:
        err_console.print(f"[red]{error.code().name}[/red]: {error.details()}")  # type: ignore[attr-defined]
        raise typer.Exit(1) from None


def channel(address: str, ca_file: Path | None = None) -> grpc.Channel:
    """A channel to `address`: over TLS when a CA bundle is given, else plaintext."""
    options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
    if ca_file is None:
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
    return grpc.secure_channel(address, credentials, options=options)
