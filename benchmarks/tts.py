"""TTS benchmark: the service against bare Piper, side by side in one run.

Runs, on this machine, with the embedded en_US-joe-medium voice and zero noise (so
both sides do exactly the same work and give the same samples):
1. unary: piper-tts's own PiperVoice (bare, same onnxruntime thread count) and a real
   `speechmesh serve tts` process answering Synthesize, alternated request by request;
   the ratio of their medians is the service's overhead;
2. time to first audio for a 5-sentence paragraph: StreamingSynthesize's first chunk
   against the whole Synthesize reply (and bare PiperVoice's first sentence);
3. real-time factor of each;
4. throughput with 1, 4 and 8 concurrent clients, each sending requests back to back:
   the server above (one batch at a time on --threads threads) beside one that runs
   --parallel batches at once on one thread each (parallel_batches).

Usage: python benchmarks/tts.py [--quick] [--repeats 9] [--seconds 15] [--threads 2]
       [--parallel 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time

import grpc
import numpy as np
import onnxruntime as ort
from harness import cpu_seconds, serve

from speechmesh.audio.v1 import audio_pb2
from speechmesh.services.tts.piper import embedded_model_path
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

RATE = 22050
PARAGRAPH = (
    "The weather was warm and bright this morning. We walked to the small market near the "
    "river. My sister bought fresh bread and some apples. Then we sat in the park and talked "
    "for an hour. It was a good day."
)
SHORT = "Thank you for calling. How can I help you today?"
ZERO_NOISE = tts_pb2.SynthesisOptions(piper=tts_pb2.PiperOptions(noise_scale=0, noise_w=0))
S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE)
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)


def bare_voice(threads: int):
    """piper-tts's PiperVoice on the embedded voice, with the service's thread settings."""
    from piper import PiperVoice

    path = embedded_model_path()
    voice = PiperVoice.load(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    voice.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return voice


def bare_synthesize(voice, text: str) -> tuple[np.ndarray, float, float]:
    """(audio, seconds to the first sentence, seconds in all)."""
    from piper import SynthesisConfig

    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    started = time.perf_counter()
    first = None
    parts = []
    for chunk in voice.synthesize(text, syn_config=config):
        if first is None:
            first = time.perf_counter() - started
        parts.append(chunk.audio_float_array)
    return np.concatenate(parts), first or 0.0, time.perf_counter() - started


def start_server(threads: int, parallel: int = 1) -> tuple[subprocess.Popen[str], str]:
    model = {
        "id": "piper-joe",
        "family": "piper",
        "max_batch_size": 1,
        "threads": threads,
        "parallel_batches": parallel,
    }
    return serve("tts", {"services": {"tts": {"port": 0, "models": [model]}}})


def wait_ready(stub: tts_pb2_grpc.TextToSpeechStub) -> None:
    for _ in range(300):
        try:
            stub.Synthesize(tts_pb2.SynthesizeRequest(text="Ready."), timeout=30)
            return
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            time.sleep(0.1)
    raise RuntimeError("model never became ready")


def service_unary(stub, text: str) -> tuple[bytes, float]:
    started = time.perf_counter()
    reply = stub.Synthesize(
        tts_pb2.SynthesizeRequest(text=text, options=ZERO_NOISE, output_format=F32), timeout=120
    )
    return reply.audio.data, time.perf_counter() - started


def service_unary_cpu(stub, pid: int) -> tuple[bytes, float, float]:
    """service_unary on the paragraph, with the server's CPU seconds for it."""
    before = cpu_seconds(pid)
    data, elapsed = service_unary(stub, PARAGRAPH)
    return data, elapsed, cpu_seconds(pid) - before


def service_first_audio(stub, text: str) -> tuple[float, float]:
    """(seconds to the first chunk, seconds to the summary) of StreamingSynthesize."""
    started = time.perf_counter()
    first = None
    request = tts_pb2.StreamingSynthesizeRequest(text=text, options=ZERO_NOISE, output_format=S16)
    for response in stub.StreamingSynthesize(request, timeout=120):
        if first is None and response.HasField("chunk"):
            first = time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started


async def throughput(address: str, clients: int, seconds: float) -> tuple[float, float, float]:
    """(requests/s, audio seconds per second, p50 latency s) with `clients` in parallel."""
    latencies: list[float] = []
    audio_samples = 0
    deadline = time.perf_counter() + seconds

    async def client(stub) -> None:
        nonlocal audio_samples
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            reply = await stub.Synthesize(
                tts_pb2.SynthesizeRequest(text=SHORT, options=ZERO_NOISE, output_format=S16)
            )
            latencies.append(time.perf_counter() - started)
            audio_samples += reply.summary.total_samples

    async with grpc.aio.insecure_channel(address) as channel:
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        started = time.perf_counter()
        await asyncio.gather(*(client(stub) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, audio_samples / RATE / elapsed, statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter load runs")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--parallel", type=int, default=2, help="batches at once in the parallel server"
    )
    args = parser.parse_args()
    repeats, seconds = (3, 5.0) if args.quick else (args.repeats, args.seconds)

    voice = bare_voice(args.threads)
    bare_synthesize(voice, PARAGRAPH)  # warm-up
    process, address = start_server(args.threads)
    try:
        with grpc.insecure_channel(address) as channel:
            stub = tts_pb2_grpc.TextToSpeechStub(channel)
            wait_ready(stub)
            service_unary(stub, PARAGRAPH)  # warm-up
            bare_times, bare_firsts, service_times, ratios = [], [], [], []
            bare_cpu = service_cpu = 0.0
            for repeat in range(repeats):
                # Back to back, alternating who goes first: each pair sees the same load
                # on this shared machine, and neither always follows the other's work.
                if repeat % 2:
                    data, elapsed, cpu = service_unary_cpu(stub, process.pid)
                    service_cpu += cpu
                cpu_before = cpu_seconds(os.getpid())
                audio, first, total = bare_synthesize(voice, PARAGRAPH)
                bare_cpu += cpu_seconds(os.getpid()) - cpu_before
                if not repeat % 2:
                    data, elapsed, cpu = service_unary_cpu(stub, process.pid)
                    service_cpu += cpu
                bare_times.append(total)
                bare_firsts.append(first)
                service_times.append(elapsed)
                ratios.append(elapsed / total)
            same = np.array_equal(np.frombuffer(data, "<f4"), audio)
            firsts, wholes, fractions = [], [], []
            for _ in range(repeats):
                first, _ = service_first_audio(stub, PARAGRAPH)
                _, whole = service_unary(stub, PARAGRAPH)
                firsts.append(first)
                wholes.append(whole)
                fractions.append(first / whole)
        duration = len(audio) / RATE
        bare, service = statistics.median(bare_times), statistics.median(service_times)
        print(f"5-sentence paragraph, {duration:.2f} s of audio, {repeats} runs, medians:")
        print(
            f"  bare PiperVoice:  {bare * 1000:7.1f} ms (RTF {bare / duration:.3f}), "
            f"first sentence after {statistics.median(bare_firsts) * 1000:.1f} ms"
        )
        print(
            f"  service unary:    {service * 1000:7.1f} ms (RTF {service / duration:.3f}); "
            f"service / bare, per pair: median {statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f}–{max(ratios):.3f}; goal ≤ 1.03); same samples: {same}"
        )
        print(
            f"  CPU time per request: bare {bare_cpu / repeats * 1000:.1f} ms, server process "
            f"{service_cpu / repeats * 1000:.1f} ms → {service_cpu / bare_cpu:.3f}× bare "
            "(less sensitive than wall time to other load on the machine)"
        )
        print(
            f"  service stream:   first audio after {statistics.median(firsts) * 1000:.1f} ms, "
            f"whole reply {statistics.median(wholes) * 1000:.1f} ms → first audio at "
            f"{statistics.median(fractions):.2f} of the whole (goal ≤ 0.33)"
        )
        levels = {
            clients: asyncio.run(throughput(address, clients, seconds)) for clients in (1, 4, 8)
        }
    finally:
        process.terminate()
        process.wait(30)
    parallel, parallel_address = start_server(1, args.parallel)
    try:
        with grpc.insecure_channel(parallel_address) as channel:
            wait_ready(tts_pb2_grpc.TextToSpeechStub(channel))
        spread = {
            clients: asyncio.run(throughput(parallel_address, clients, seconds))
            for clients in (1, 4, 8)
        }
    finally:
        parallel.terminate()
        parallel.wait(30)
    print(f"\nthroughput, {seconds:.0f} s per level, requests of {SHORT!r}:")
    print(
        f"{'clients':>8} | {args.threads} thread(s), one batch: {'req/s':>6} {'p50 s':>6} | "
        f"{args.parallel} batches × 1 thread: {'req/s':>6} {'p50 s':>6} | ratio"
    )
    for clients in (1, 4, 8):
        (one_rate, _, one_p50), (par_rate, _, par_p50) = levels[clients], spread[clients]
        print(
            f"{clients:>8} | {'':>21}{one_rate:>6.2f} {one_p50:>6.3f} | "
            f"{'':>21}{par_rate:>6.2f} {par_p50:>6.3f} | {par_rate / one_rate:.2f}"
        )


if __name__ == "__main__":
    main()
