"""`speechmesh transcribe FILE`: speech to text, whole file or as a live stream."""

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
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc

console = Console()


def transcribe(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="audio file"),
    as_json: bool = typer.Option(False, "--json", help="print responses as JSON"),
    words: bool = typer.Option(False, "--words", help="word timestamps"),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="send the file at real-time pace as a stream (wav or raw) and print interim "
        "text as it changes, then the finals",
    ),
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    ca_file: Path | None = CaFileOption,
    model: str = typer.Option("", "--model", "-m", help="STT model id (default: the server's)"),
    rate: int = typer.Option(0, "--rate", help="sample rate of a raw .pcm/.ulaw file, Hz"),
    language: str = typer.Option("", "--language", "-l", help="language code (default: detect)"),
    beam_size: int | None = typer.Option(None, "--beam-size", help="beam width (default 5)"),
    vad_filter: bool = typer.Option(False, "--vad-filter", help="decode only detected speech"),
    prompt: str = typer.Option("", "--prompt", help="initial prompt (names, vocabulary)"),
    interim_ms: int | None = typer.Option(
        None, "--interim-ms", help="with --stream: least ms of audio between interim results"
    ),
) -> None:
    """Transcribe FILE (wav, flac, ogg/opus, raw pcm or mu-law)."""
    options = stt_pb2.RecognitionOptions(
        language=language,
        beam_size=beam_size,
        word_timestamps=words,
        vad_filter=vad_filter,
        initial_prompt=prompt,
    )
    fmt = audio_format_for(file, rate)
    metadata = call_metadata(api_key)
    with rpc_errors(), channel(address, ca_file) as chan:
        stub = stt_pb2_grpc.SpeechToTextStub(chan)
        if stream:
            config = stt_pb2.StreamingRecognizeConfig(
                model=model,
                format=fmt,
                options=options,
                interim_results=True,
                interim_interval_ms=interim_ms,
            )
            printer = _StreamPrinter(as_json, words)
            for response in stub.StreamingRecognize(
                _stream_requests(file, config), metadata=metadata
            ):
                printer.show(response)
            return
        request = stt_pb2.RecognizeRequest(
            model=model, audio=audio_pb2.Audio(format=fmt, data=file.read_bytes()), options=options
        )
        response = stub.Recognize(request, metadata=metadata, timeout=3600)
    if as_json:
        print(json.dumps(MessageToDict(response), indent=2))
        return
    _print_transcript(file, response, words)


def _stream_requests(
    file: Path, config: stt_pb2.StreamingRecognizeConfig
) -> Iterator[stt_pb2.StreamingRecognizeRequest]:
    yield stt_pb2.StreamingRecognizeRequest(config=config)
    for data in audio_chunks(file, config.format, realtime=True):
        yield stt_pb2.StreamingRecognizeRequest(audio=audio_pb2.AudioChunk(data=data))


class _StreamPrinter:
    """Interim text rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, as_json: bool, words: bool) -> None:
        self._json = as_json
        self._words = words
        self._interim = ""

    def show(self, response: stt_pb2.StreamingRecognizeResponse) -> None:
        if self._json:
            print(json.dumps(MessageToDict(response)), flush=True)
            return
        for result in response.results:
            if result.is_final:
                self._final(result)
        interim = " ".join(r.alternatives[0].transcript for r in response.results if not r.is_final)
        if interim and interim != self._interim:
            self._interim = interim
            if console.is_terminal:
                console.print(f"[dim]… {interim}[/dim]", end="\r", soft_wrap=True)
            else:
                console.print(f"… {interim}", soft_wrap=True)
        if response.end_of_stream:
            rate = response.sample_rate_hz or 1
            console.print(f"end of stream: {response.processed_samples / rate:.3f} s processed")

    def _final(self, result: stt_pb2.StreamingRecognitionResult) -> None:
        self._interim = ""
        text = result.alternatives[0].transcript if result.alternatives else ""
        span = f"[{result.start_ms / 1000:7.2f} – {result.end_ms / 1000:7.2f}]"
        console.print(f"{span} {text}", soft_wrap=True)
        if self._words and result.alternatives:
            for word in result.alternatives[0].words:
                console.print(
                    f"    {word.start_ms / 1000:7.2f} {word.end_ms / 1000:7.2f} {word.word}"
                )


def _print_transcript(file: Path, response: stt_pb2.RecognizeResponse, words: bool) -> None:
    language = f"{response.language} ({response.language_probability:.2f})"
    console.print(f"[bold]{file.name}[/bold] · {response.model} · {language}")
    table = Table(show_header=True)
    for column in ("start s", "end s", "text"):
        table.add_column(column, justify="left" if column == "text" else "right")
    for segment in response.segments:
        table.add_row(
            f"{segment.start_ms / 1000:.2f}", f"{segment.end_ms / 1000:.2f}", segment.text
        )
    console.print(table)
    if words:
        for word in response.words:
            console.print(
                f"  {word.start_ms / 1000:7.2f} {word.end_ms / 1000:7.2f} "
                f"{word.confidence:.2f} {word.word}"
            )
    console.print(response.text, soft_wrap=True)
