"""Gateway benchmark: the same calls direct to a backend and through the gateway.

One VAD backend and one gateway in front of it, both real `speechmesh serve`
processes on loopback, measured side by side in one run:

(a) a small unary call (VoiceActivity/Detect on 100 ms of audio), sequential: p50 and
    p99 latency direct and through the gateway, and the added latency (goal ≤ 0.5 ms p50);
(b) a streaming call (VoiceActivity/StreamingDetect) pushing audio as fast as the
    backend takes it: MB/s of audio direct and through the gateway, and their ratio.

Usage: python benchmarks/gateway.py [--calls 1000] [--seconds 600] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import grpc
import numpy as np
from harness import serve, stop

from speechmesh.audio.v1 import audio_pb2
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

RATE = 16000
FORMAT = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE)


def unary(address: str, calls: int) -> np.ndarray:
    request = vad_pb2.DetectRequest(
        audio=audio_pb2.Audio(format=FORMAT, data=b"\1\0" * (RATE // 10))
    )
    with grpc.insecure_channel(address) as channel:
        stub = vad_pb2_grpc.VoiceActivityStub(channel)
        for _ in range(50):  # warm-up: connection, model, caches
            stub.Detect(request, timeout=10)
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            stub.Detect(request, timeout=10)
            latencies.append(time.perf_counter() - started)
    return np.array(latencies) * 1000


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=600.0, help="audio per stream run")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.seconds = 300, 120.0
    backend, backend_address = serve(
        "vad",
        {
            "services": {
                "vad": {"port": 0, "models": [{"id": "silero-vad", "family": "silero-vad"}]}
            }
        },
    )
    gateway, gateway_address = serve(
        "gateway",
        {
            "services": {"gateway": {"port": 0}},
            "gateway": {"backends": [{"name": "vad", "target": backend_address}]},
        },
    )
    try:
        time.sleep(1.0)  # the gateway's first refresh
        direct = unary(backend_address, args.calls)
        through = unary(gateway_address, args.calls)
        direct = np.concatenate([direct, unary(backend_address, args.calls)])  # interleaved
        through = np.concatenate([through, unary(gateway_address, args.calls)])
        p50d, p99d = np.percentile(direct, [50, 99])
        p50g, p99g = np.percentile(through, [50, 99])
        print(f"(a) unary Detect, 100 ms of audio, {len(direct)} sequential calls each way:")
        print(f"    direct   p50 {p50d:6.3f} ms  p99 {p99d:6.3f} ms")
        print(f"    gateway  p50 {p50g:6.3f} ms  p99 {p99g:6.3f} ms")
        print(
            f"    added    p50 {p50g - p50d:6.3f} ms  p99 {p99g - p99d:6.3f} ms"
            "  (goal ≤ 0.5 ms p50)"
        )
        runs = {"direct": [], "gateway": []}
        for _ in range(2):
            for label, address in (("direct", backend_address), ("gateway", gateway_address)):
                runs[label].append(
                    asyncio.run(stream_throughput(address, args.seconds, args.chunk_ms))
                )
        best_direct, best_gateway = max(runs["direct"]), max(runs["gateway"])
        print(
            f"(b) StreamingDetect, {args.seconds:.0f} s of 16 kHz PCM in {args.chunk_ms} ms "
            "chunks, pushed as fast as processed (best of 2):"
        )
        print(f"    direct   {best_direct:7.2f} MB/s of audio")
        print(f"    gateway  {best_gateway:7.2f} MB/s of audio")
        print(f"    ratio gateway / direct {best_gateway / best_direct:.3f}  (goal ≥ 0.95)")
    finally:
        for process in (gateway, backend):
            stop(process)


if __name__ == "__main__":
    main()
