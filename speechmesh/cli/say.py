"""`speechmesh say TEXT -o FILE`: text to speech, whole or written chunk by chunk as it
is synthesized (--stream)."""

from __future__ import annotations

import contextlib
import struct
import sys
import time
from pathlib import Path
from typing import BinaryIO

import typer

from speechmesh.audio.v1 import audio_pb2
from speechmesh.cli.common import (
    AddressOption,
    ApiKeyOption,
    CaFileOption,
    call_metadata,
    channel,
    err_console,
    rpc_errors,
)
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

FORMATS = {
    "wav": audio_pb2.AUDIO_ENCODING_WAV,
    "flac": audio_pb2.AUDIO_ENCODING_FLAC,
    "ogg": audio_pb2.AUDIO_ENCODING_OGG_OPUS,
    "opus": audio_pb2.AUDIO_ENCODING_OGG_OPUS,
    "pcm": audio_pb2.AUDIO_ENCODING_PCM_S16LE,
    "raw": audio_pb2.AUDIO_ENCODING_PCM_S16LE,
    "f32": audio_pb2.AUDIO_ENCODING_PCM_F32LE,
    "ulaw": audio_pb2.AUDIO_ENCODING_MULAW,
    "mulaw": audio_pb2.AUDIO_ENCODING_MULAW,
}
# RIFF and data size fields of the WAV header a stream starts with.
RIFF_SIZE_AT, DATA_SIZE_AT, WAV_HEADER_BYTES = 4, 40, 44


def say(
    text: str = typer.Argument(..., help="text to speak; '-' reads it from standard input"),
    output: str = typer.Option(
        ..., "--output", "-o", help="audio file to write; '-' writes to standard output"
    ),
    voice: str = typer.Option("", "--voice", "-v", help="voice id or alias (default: the model's)"),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help=f"one of {', '.join(FORMATS)} (default: from -o's suffix)"
    ),
    stream: bool = typer.Option(
        False, "--stream", help="write each chunk as soon as it arrives (StreamingSynthesize)"
    ),
    rate: int = typer.Option(0, "--rate", help="sample rate in Hz (default: the model's own)"),
    speed: float | None = typer.Option(None, "--speed", help="speaking rate, 1.0 is normal"),
    model: str = typer.Option("", "--model", "-m", help="TTS model id (default: the server's)"),
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """Speak TEXT into an audio file (wav, flac, ogg/opus, raw pcm, f32 or mu-law)."""
    if text == "-":
        text = sys.stdin.read()
    encoding = _encoding(fmt, output)
    output_format = audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate)
    options = tts_pb2.SynthesisOptions(voice=voice, speed=speed)
    metadata = call_metadata(api_key)
    started = time.monotonic()
    with rpc_errors(), channel(address, ca_file) as chan, _open(output) as sink:
        stub = tts_pb2_grpc.TextToSpeechStub(chan)
        if stream:
            request = tts_pb2.StreamingSynthesizeRequest(
                model=model, text=text, options=options, output_format=output_format
            )
            summary, first = _write_stream(stub, request, metadata, sink, started)
            if encoding == audio_pb2.AUDIO_ENCODING_WAV:
                _patch_wav_sizes(sink)
        else:
            reply = stub.Synthesize(
                tts_pb2.SynthesizeRequest(
                    model=model, text=text, options=options, output_format=output_format
                ),
                metadata=metadata,
                timeout=600,
            )
            sink.write(reply.audio.data)
            summary, first = reply.summary, None
    latency = f", first audio after {first:.2f} s" if first is not None else ""
    err_console.print(
        f"{output}: {summary.duration_ms / 1000:.2f} s at {summary.sample_rate_hz} Hz, "
        f"{summary.num_spans} sentence(s), {summary.processing_ms / 1000:.2f} s to make{latency}"
    )


def _encoding(fmt: str | None, output: str) -> int:
    name = fmt or (Path(output).suffix.lstrip(".").lower() if output != "-" else "wav")
    if name not in FORMATS:
        raise typer.BadParameter(
            f"unknown audio format {name!r}; give --format, one of {', '.join(FORMATS)}"
        )
    return FORMATS[name]


def _open(output: str) -> contextlib.AbstractContextManager[BinaryIO]:
    if output == "-":
        return contextlib.nullcontext(sys.stdout.buffer)
    return open(output, "wb")


def _write_stream(
    stub: tts_pb2_grpc.TextToSpeechStub,
    request: tts_pb2.StreamingSynthesizeRequest,
    metadata: list[tuple[str, str]],
    sink: BinaryIO,
    started: float,
) -> tuple[tts_pb2.SynthesisSummary, float | None]:
    first = None
    summary = tts_pb2.SynthesisSummary()
    for response in stub.StreamingSynthesize(request, metadata=metadata, timeout=600):
        if response.HasField("summary"):
            summary = response.summary
            continue
        if first is None:
            first = time.monotonic() - started
        sink.write(response.chunk.audio.data)
        sink.flush()
    return summary, first


def _patch_wav_sizes(sink: BinaryIO) -> None:
    """A streamed WAV's header says "size unknown"; a regular file can say the truth."""
    if not sink.seekable():
        return
    size = sink.seek(0, 2)
    if size < WAV_HEADER_BYTES:
        return
    sink.seek(RIFF_SIZE_AT)
    sink.write(struct.pack("<I", size - 8))
    sink.seek(DATA_SIZE_AT)
    sink.write(struct.pack("<I", size - WAV_HEADER_BYTES))
    sink.seek(size)
