"""`speechmesh embed`, `restore` and `convert`: clients of the conversion service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import typer
from google.protobuf import json_format
from google.protobuf.json_format import MessageToDict

from speechmesh.audio.v1 import audio_pb2
from speechmesh.cli.common import (
    AddressOption,
    ApiKeyOption,
    CaFileOption,
    audio_format_for,
    call_metadata,
    channel,
    err_console,
    rpc_errors,
)
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

CHUNK_SECONDS = 0.1

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


def _output_format(path: Path, rate: int) -> audio_pb2.AudioFormat:
    fmt = audio_format_for(path, rate)
    fmt.sample_rate_hz = rate
    return fmt


def _stream_chunks(path: Path, fmt: audio_pb2.AudioFormat) -> Iterator[bytes]:
    """The file's bytes in pieces of about CHUNK_SECONDS (the WAV header travels first)."""
    data = path.read_bytes()
    width = 1 if fmt.encoding == audio_pb2.AUDIO_ENCODING_MULAW else 2
    rate = fmt.sample_rate_hz or sf.info(str(path)).samplerate
    size = max(1, int(rate * width * CHUNK_SECONDS))
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def _write_stream(output: Path, chunks: list[bytes], rate: int) -> None:
    samples = np.frombuffer(b"".join(chunks), "<i2")
    sf.write(str(output), samples, rate, subtype="PCM_16")


def restore(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="audio to restore"),
    output: Path = typer.Option(..., "--output", "-o", help="where to write (.wav, .flac, .ogg)"),
    model: str = typer.Option("", "--model", "-m", help="restoration model id"),
    stream: bool = typer.Option(False, "--stream", help="send and receive as a stream"),
    attenuation_limit_db: float | None = typer.Option(
        None, "--attenuation-limit-db", help="reduce noise by at most this many dB"
    ),
    output_rate: int = typer.Option(0, "--output-rate", help="Hz (default: the model's)"),
    rate: int = RateOption,
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """Denoise/restore FILE with a restoration model and write the result."""
    options = conversion_pb2.RestorationOptions(attenuation_limit_db=attenuation_limit_db)
    metadata = call_metadata(api_key)
    with rpc_errors(), channel(address, ca_file) as chan:
        stub = conversion_pb2_grpc.AudioRestorationStub(chan)
        if stream:
            config = conversion_pb2.StreamingRestoreConfig(
                model=model,
                format=audio_format_for(file, rate),
                options=options,
                output_format=audio_pb2.AudioFormat(
                    encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=output_rate
                ),
            )
            requests = [conversion_pb2.StreamingRestoreRequest(config=config)]
            requests += [
                conversion_pb2.StreamingRestoreRequest(audio=audio_pb2.AudioChunk(data=piece))
                for piece in _stream_chunks(file, config.format)
            ]
            responses = list(stub.StreamingRestore(iter(requests), metadata=metadata))
            chunks = [r.audio.data for r in responses if r.HasField("audio")]
            _write_stream(output, chunks, responses[-1].format.sample_rate_hz)
        else:
            request = conversion_pb2.RestoreRequest(
                model=model,
                audio=read_audio(file, rate),
                options=options,
                output_format=_output_format(output, output_rate),
            )
            response = stub.Restore(request, metadata=metadata, timeout=600)
            output.write_bytes(response.audio.data)
    err_console.print(f"wrote {output}")


def _target(target: Path, rate: int) -> dict[str, object]:
    """target_embedding from a .json written by `embed -o`, else target_audio."""
    if target.suffix.lower() == ".json":
        embedding = audio_pb2.SpeakerEmbedding()
        json_format.Parse(target.read_text(), embedding)
        return {"target_embedding": embedding}
    return {"target_audio": read_audio(target, rate)}


def convert(
    source: Path = typer.Argument(..., exists=True, dir_okay=False, help="speech to convert"),
    target: Path = typer.Option(
        ..., "--target", "-t", exists=True, dir_okay=False, help="target voice: audio or .json"
    ),
    output: Path = typer.Option(..., "--output", "-o", help="where to write (.wav, .flac, .ogg)"),
    model: str = typer.Option("", "--model", "-m", help="conversion model id"),
    source_voice: str = typer.Option(
        "", "--source-voice", help="a base speaker of the model that spoke SOURCE"
    ),
    tau: float | None = typer.Option(None, "--tau", help="randomness, >= 0 (default 0.3)"),
    seed: int | None = typer.Option(None, "--seed", help="seed of the random draw"),
    output_rate: int = typer.Option(0, "--output-rate", help="Hz (default: the model's)"),
    rate: int = RateOption,
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    ca_file: Path | None = CaFileOption,
) -> None:
    """Convert SOURCE to the voice of --target and write the result."""
    request = conversion_pb2.ConvertRequest(
        model=model,
        source=read_audio(source, rate),
        options=conversion_pb2.ConversionOptions(tau=tau, seed=seed),
        output_format=_output_format(output, output_rate),
        source_voice=source_voice,
        **_target(target, rate),  # type: ignore[arg-type]
    )
    with rpc_errors(), channel(address, ca_file) as chan:
        response = conversion_pb2_grpc.VoiceConversionStub(chan).Convert(
            request, metadata=call_metadata(api_key), timeout=600
        )
    output.write_bytes(response.audio.data)
    err_console.print(f"wrote {output} ({response.model})")
