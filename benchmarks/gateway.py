"""Gateway benchmark: the same calls direct to a backend and through the gateway.

One VAD backend and one gateway in front of it, both real `speechmesh serve`
processes on loopback, measured side by side in one run:

(a) a small unary call (VoiceActivity/Detect on 100 ms of audio), sequential, direct and
    through the gateway in alternation (so that the machine's load falls on both alike):
    p50 and p99 latency each way, the added latency (goal ≤ 0.5 ms p50), and the CPU
    time per call of each process (all threads; on the direct line, the backend's), in
    `--repeats` rounds, with their median;
(b) a streaming call (VoiceActivity/StreamingDetect) pushing audio as fast as the
    backend takes it: MB/s of audio direct and through the gateway, and their ratio.

`--baseline CHECKOUT` also starts a gateway from another checkout (e.g. the commit
before a change) in front of the same backend, and measures it in the same rounds.

Usage: python benchmarks/gateway.py [--calls 1000] [--repeats 3] [--seconds 600] [--quick]
                                    [--baseline /path/to/checkout]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import grpc
import numpy as np
from harness import cpu_seconds, serve, stop

from speechmesh.audio.v1 import audio_pb2
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

RATE = 16000
FORMAT = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE)


def unary(addresses: dict[str, str], calls: int) -> dict[str, np.ndarray]:
    """Latencies (ms) of `calls` sequential Detect calls to each address, in alternation."""
    request = vad_pb2.DetectRequest(
        audio=audio_pb2.Audio(format=FORMAT, data=b"\1\0" * (RATE // 10))
    )
    channels = {label: grpc.insecure_channel(address) for label, address in addresses.items()}
    try:
        stubs = {label: vad_pb2_grpc.VoiceActivityStub(ch) for label, ch in channels.items()}
        for stub in stubs.values():
            for _ in range(50):  # warm-up: connection, model, caches
                stub.Detect(request, timeout=10)
        latencies: dict[str, list[float]] = {label: [] for label in stubs}
        order = list(stubs.items())
        for i in range(calls):
            for label, stub in order if i % 2 else reversed(order):
                started = time.perf_counter()
                stub.Detect(request, timeout=10)
                latencies[label].append(time.perf_counter() - started)
    finally:
        for channel in channels.values():
            channel.close()
    return {label: np.array(values) * 1000 for label, values in latencies.items()}


async def stream_throughput(address: str, seconds_of_audio: float, chunk_ms: int) -> float:
    """MB of audio per second of wall time that one stream carries, processed."""
    chunk = np.random.default_rng(1).integers(-300, 300, RATE * chunk_ms // 1000, dtype="<i2")
    data = chunk.tobytes()
    count = int(seconds_of_audio * 1000 / chunk_ms)

    async def requests():
        yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=FORMAT))
        for _ in range(count):
            yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=data))

    async with grpc.aio.insecure_channel(address) as channel:
        stub = vad_pb2_grpc.VoiceActivityStub(channel)
        started = time.perf_counter()
        last = None
        async for response in stub.StreamingDetect(requests()):
            last = response
        elapsed = time.perf_counter() - started
    assert last is not None and last.processed_samples == count * len(chunk)
    return count * len(data) / elapsed / 1e6


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="unary calls per round")
    parser.add_argument("--repeats", type=int, default=3, help="unary rounds")
    parser.add_argument("--seconds", type=float, default=600.0, help="audio per stream run")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--baseline", help="a checkout whose gateway is measured alongside")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.repeats, args.seconds = 300, 1, 120.0
    backend, backend_address = serve(
        "vad",
        {
            "services": {
                "vad": {"port": 0, "models": [{"id": "silero-vad", "family": "silero-vad"}]}
            }
        },
    )
    gateway_config = {
        "services": {"gateway": {"port": 0}},
        "gateway": {"backends": [{"name": "vad", "target": backend_address}]},
    }
    processes = [backend]
    addresses = {"direct": backend_address}
    try:
        gateway, addresses["gateway"] = serve("gateway", gateway_config)
        processes.append(gateway)
        if args.baseline:
            baseline, addresses["baseline"] = serve(
                "gateway", gateway_config, pythonpath=args.baseline
            )
            processes.append(baseline)
        time.sleep(1.0)  # the gateways' first refresh
        print(f"load average before: {load_average()}")
        print(
            f"(a) unary Detect, 100 ms of audio, {args.calls} sequential calls each way per "
            "round, in alternation:"
        )
        added: dict[str, list[float]] = {label: [] for label in addresses if label != "direct"}
        pids = dict(zip(addresses, (p.pid for p in processes), strict=True))
        for round_ in range(args.repeats):
            cpu_before = {label: cpu_seconds(pid) for label, pid in pids.items()}
            latencies = unary(addresses, args.calls)
            # Each process's CPU time (all its threads) per call it served this round;
            # the backend serves both ways' calls.
            cpu_per_call = {
                label: (cpu_seconds(pid) - cpu_before[label]) / args.calls * 1e6
                for label, pid in pids.items()
            }
            cpu_per_call["direct"] /= len(addresses)
            p50d = float(np.percentile(latencies["direct"], 50))
            p99d = float(np.percentile(latencies["direct"], 99))
            for label, values in latencies.items():
                p50, p99 = np.percentile(values, [50, 99])
                extra = f"  CPU {cpu_per_call[label]:4.0f} µs/call"
                if label != "direct":
                    added[label].append(p50 - p50d)
                    extra += f"  added p50 {p50 - p50d:+6.3f} ms  p99 {p99 - p99d:+6.3f} ms"
                print(
                    f"    round {round_ + 1} {label:9s} p50 {p50:6.3f} ms  p99 {p99:6.3f} ms"
                    + extra
                )
        for label, values in added.items():
            print(
                f"    {label}: median added p50 over {len(values)} rounds "
                f"{float(np.median(values)):6.3f} ms  (goal ≤ 0.5 ms)"
            )
        print(f"load average after (a): {load_average()}")
        runs: dict[str, list[float]] = {label: [] for label in addresses}
        for _ in range(2):
            for label, address in addresses.items():
                runs[label].append(
                    asyncio.run(stream_throughput(address, args.seconds, args.chunk_ms))
                )
        best = {label: max(values) for label, values in runs.items()}
        print(
            f"(b) StreamingDetect, {args.seconds:.0f} s of 16 kHz PCM in {args.chunk_ms} ms "
            "chunks, pushed as fast as processed (best of 2):"
        )
        for label, value in best.items():
            ratio = ""
            if label != "direct":
                ratio = f"  ratio {value / best['direct']:.3f} (goal ≥ 0.95)"
            print(f"    {label:9s} {value:7.2f} MB/s of audio{ratio}")
        print(f"load average after (b): {load_average()}")
    finally:
        for process in reversed(processes):
            stop(process)


if __name__ == "__main__":
    main()
