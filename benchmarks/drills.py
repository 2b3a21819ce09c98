"""Load drill: streaming STT, TTS and VAD sessions through the gateway for a set time.

Real `speechmesh serve` processes on loopback (the embedded VAD, STT and TTS models
and a gateway in front), and nothing else: the drill reaches no other host and stops
by itself. Three steps:

1. capacity: `--probe-s` seconds of closed-loop sessions (each kind `--probe-sessions`
   at a time, every session as fast as the mesh takes it); each kind's completed
   sessions per second, all three kinds running together, is its capacity;
2. drill: `--minutes` of sessions started at `--load` (0.8) × each kind's capacity,
   open loop (a session starts on time whether or not earlier ones have ended);
   every session is checked (every sample sent accounted for, a final transcript,
   speech found, audio synthesized); printed: sessions and audio per second, p50 and
   p99 latency, errors by status, each process's RSS at the drill's start and end;
3. overload: `--overload` × the gateway's max_concurrent_streams opened at once and
   held; those past the limit must be refused RESOURCE_EXHAUSTED within a second, no
   call may outlive its deadline, and once they are gone each kind serves again.

Usage: python benchmarks/drills.py [--minutes 5] [--load 0.8] [--json out.json]
The exit status is 0 when the drill had no error and every overload check held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from harness import serve, stop

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime import audio as audio_io
from speechmesh.runtime.streams import close_requests, write_request
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

RATE = 16000
S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE)
SENTENCE = "The quick brown fox jumps over the lazy dog, and the drill goes on."
SPOKEN = "Speech arrives in pieces and every piece is counted."
KINDS = ("stt", "tts", "vad")
DEADLINE_S = 60.0


@dataclass
class Tally:
    """What the sessions of one kind did."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    messages: dict[str, str] = field(default_factory=dict)
    """The first message of each status met."""
    audio_s: float = 0.0

    def line(self, kind: str, wall_s: float) -> str:
        done = len(self.latencies)
        p50, p99 = np.percentile(self.latencies, [50, 99]) if done else (float("nan"),) * 2
        errors = ", ".join(f"{k} {v}" for k, v in self.errors.items()) or "none"
        return (
            f"  {kind:<4} {done:6d} sessions  {done / wall_s:6.2f}/s  "
            f"{self.audio_s / wall_s:6.2f} s of audio/s  p50 {p50 * 1000:7.1f} ms  "
            f"p99 {p99 * 1000:7.1f} ms  errors: {errors}"
        )


class Clients:
    """One channel to the gateway and one session function per kind."""

    def __init__(self, address: str, clip: np.ndarray, chunk_ms: int) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.stt = stt_pb2_grpc.SpeechToTextStub(self.channel)
        self.tts = tts_pb2_grpc.TextToSpeechStub(self.channel)
        self.vad = vad_pb2_grpc.VoiceActivityStub(self.channel)
        pcm = audio_io.encode(clip, RATE, audio_io.AudioSpec(audio_io.Encoding.PCM_S16LE, RATE))
        step = RATE * chunk_ms // 1000 * 2
        self.chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        self.samples = len(pcm) // 2
        self.clip_s = self.samples / RATE

    async def session(self, kind: str, tally: Tally) -> None:
        run: Callable[[], Awaitable[float]] = getattr(self, f"_{kind}")
        started = time.perf_counter()
        try:
            audio_s = await run()
        except grpc.aio.AioRpcError as error:
            tally.errors[error.code().name] += 1
            tally.messages.setdefault(error.code().name, error.details() or "")
            return
        except AssertionError as error:
            tally.errors[f"check failed: {error}"] += 1
            return
        tally.latencies.append(time.perf_counter() - started)
        tally.audio_s += audio_s

    def _audio(self, config: object, payload: type) -> list[object]:
        return [config, *(payload(audio=audio_pb2.AudioChunk(data=c)) for c in self.chunks)]

    async def _stt(self) -> float:
        config = stt_pb2.StreamingRecognizeRequest(
            config=stt_pb2.StreamingRecognizeConfig(format=S16)
        )
        responses = streamed(
            self.stt.StreamingRecognize, self._audio(config, stt_pb2.StreamingRecognizeRequest)
        )
        finals, last = [], None
        async for response in responses:
            finals += [r.alternatives[0].transcript for r in response.results if r.is_final]
            last = response
        assert last is not None and last.end_of_stream, "no end of stream"
        assert last.processed_samples == self.samples, (
            f"{last.processed_samples} of {self.samples} samples processed"
        )
        assert "".join(finals).strip(), "no final transcript"
        return self.clip_s

    async def _vad(self) -> float:
        config = vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=S16))
        responses = streamed(
            self.vad.StreamingDetect, self._audio(config, vad_pb2.StreamingDetectRequest)
        )
        ends, last = [], None
        async for response in responses:
            if response.event.type == vad_pb2.SPEECH_EVENT_TYPE_END:
                ends.append(response.event.segment)
            last = response
        assert last is not None and last.end_of_stream, "no end of stream"
        assert last.processed_samples == self.samples, (
            f"{last.processed_samples} of {self.samples} samples processed"
        )
        assert ends, "no speech found"
        assert all(s.end_sample <= self.samples for s in ends), "a segment past the audio"
        return self.clip_s

    async def _tts(self) -> float:
        request = tts_pb2.StreamingSynthesizeRequest(text=SENTENCE, output_format=S16)
        samples = 0
        summary = None
        async for response in self.tts.StreamingSynthesize(request, timeout=DEADLINE_S):
            if response.HasField("chunk"):
                samples += len(response.chunk.audio.data) // 2
            else:
                summary = response.summary
        assert summary is not None and samples > RATE, f"{samples} samples synthesized"
        return samples / RATE


async def streamed(
    method: Callable[..., grpc.aio.StreamStreamCall],
    requests: list[object],
    hold: asyncio.Event | None = None,
) -> AsyncIterator[object]:
    """The responses of a stream that sends `requests` (then waits for `hold`, when
    given, before half-closing). Written with `write_request`, so a stream the server
    refuses ends with the server's status, not grpc.aio's INTERNAL (grpc/grpc#36066)."""
    call = method(timeout=DEADLINE_S)

    async def send() -> None:
        for request in requests:
            if not await write_request(call, request):
                return
        if hold is not None:
            await hold.wait()
        await close_requests(call)

    writer = asyncio.create_task(send())
    try:
        async for response in call:
            yield response
    finally:
        writer.cancel()
        call.cancel()


async def speech_clip(address: str) -> np.ndarray:
    """A sentence spoken by the mesh's own TTS, with silence around it, at 16 kHz."""
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
            tts_pb2.SynthesizeRequest(text=SPOKEN, output_format=S16), timeout=60
        )
    speech = np.frombuffer(reply.audio.data, "<i2").astype(np.float32) / 32768
    silence = np.zeros(RATE // 2, np.float32)
    return np.concatenate([silence, speech, silence])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def closed_loop(clients: Clients, sessions: int, seconds: float) -> dict[str, Tally]:
    """`sessions` of each kind at a time, each starting again as soon as it ends."""
    tallies = {kind: Tally() for kind in KINDS}
    stop_at = time.perf_counter() + seconds

    async def worker(kind: str) -> None:
        while time.perf_counter() < stop_at:
            await clients.session(kind, tallies[kind])

    await asyncio.gather(*(worker(k) for k in KINDS for _ in range(sessions)))
    return tallies


async def open_loop(clients: Clients, rates: dict[str, float], seconds: float) -> dict:
    """Sessions started at `rates` (per second, each kind) for `seconds`, Poisson."""
    tallies = {kind: Tally() for kind in KINDS}
    started = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()
    random_ = random.Random(19)

    async def arrivals(kind: str) -> None:
        at = started
        while True:
            at += random_.expovariate(rates[kind])
            if at - started > seconds:
                return
            await asyncio.sleep(max(at - time.perf_counter(), 0))
            task = asyncio.create_task(clients.session(kind, tallies[kind]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    await asyncio.gather(*(arrivals(k) for k in KINDS if rates[k] > 0))
    if tasks:
        await asyncio.gather(*tasks)
    return tallies


async def overload(clients: Clients, limit: int, factor: float) -> list[str]:
    """Streams past the gateway's limit, held open: what failed of the promises."""
    count = int(limit * factor)
    release = asyncio.Event()
    outcomes: list[tuple[str, float]] = []

    held = [
        vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=S16)),
        vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=clients.chunks[0])),
    ]

    async def one() -> None:
        started = time.perf_counter()
        try:
            async for _ in streamed(clients.vad.StreamingDetect, held, release):
                pass
            outcomes.append(("OK", time.perf_counter() - started))
        except grpc.aio.AioRpcError as error:
            outcomes.append((error.code().name, time.perf_counter() - started))

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.sleep(3.0)  # every stream is open or refused by now
    refused = [t for code, t in outcomes if code == "RESOURCE_EXHAUSTED"]
    failures = []
    expected = count - limit
    if len(refused) < expected:
        failures.append(f"{len(refused)} of {count} streams refused, {expected} expected")
    if refused and max(refused) > 1.0:
        failures.append(f"a refusal took {max(refused):.2f} s")
    release.set()
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE_S + 5)
    except TimeoutError:
        failures.append("a stream outlived its deadline")
    codes = Counter(code for code, _ in outcomes)
    print(
        f"  {count} streams against max_concurrent_streams {limit}: "
        + ", ".join(f"{k} {v}" for k, v in codes.items())
        + (f"; refused within {max(refused) * 1000:.0f} ms" if refused else "")
    )
    if set(codes) - {"OK", "RESOURCE_EXHAUSTED"}:
        failures.append(f"unexpected statuses {dict(codes)}")
    recovered = await closed_loop(clients, 1, 1.0)
    for kind, tally in recovered.items():
        if tally.errors or not tally.latencies:
            failures.append(f"{kind} did not recover: {dict(tally.errors)}")
    print("  after the overload:", "every kind serves" if not failures else "; ".join(failures))
    return failures


def start_mesh(stream_limit: int) -> tuple[dict[str, object], str]:
    vad = {"id": "silero-vad", "family": "silero-vad", "max_batch_size": 256}
    models = {
        "vad": [vad],
        "stt": [
            {
                "id": "whisper-tiny.en",
                "family": "faster-whisper",
                "dtype": "int8",
                "threads": 2,
                "max_batch_size": 16,
                "max_batch_wait_ms": 5.0,
            },
            vad,
        ],
        "tts": [{"id": "piper-joe", "family": "piper", "max_batch_size": 1, "threads": 2}],
    }
    processes, targets = {}, {}
    for name, hosted in models.items():
        config = {"services": {name: {"port": 0, "models": hosted}}, "drain_grace_s": 5}
        processes[name], targets[name] = serve(name, config)
    gateway_config = {
        "services": {"gateway": {"port": 0}},
        "gateway": {
            "backends": [{"name": n, "target": t} for n, t in targets.items()],
            "refresh_interval_s": 0.5,
        },
        "limits": {"max_concurrent_streams": stream_limit},
        "drain_grace_s": 5,
    }
    processes["gateway"], address = serve("gateway", gateway_config)
    time.sleep(1.5)  # the gateway's first refreshes
    return processes, address


async def drill(args: argparse.Namespace, processes: dict, address: str) -> dict:
    clients = Clients(address, await speech_clip(address), args.chunk_ms)
    report: dict = {"clip_s": clients.clip_s}
    print(f"capacity: {args.probe_s:.0f} s, {args.probe_sessions} closed-loop sessions per kind")
    await closed_loop(clients, 1, 5.0)  # warm-up
    probe = await closed_loop(clients, args.probe_sessions, args.probe_s)
    capacity = {kind: len(t.latencies) / args.probe_s for kind, t in probe.items()}
    for kind, tally in probe.items():
        print(tally.line(kind, args.probe_s))
    report["capacity_per_s"] = capacity
    rates = {kind: args.load * rate for kind, rate in capacity.items()}
    seconds = args.minutes * 60
    print(
        f"drill: {args.minutes:g} min at {args.load:.0%} of capacity ("
        + ", ".join(f"{k} {r:.2f}/s" for k, r in rates.items())
        + ")"
    )
    rss_start = {name: rss_mb(p.pid) for name, p in processes.items()}
    samples: list[dict[str, float]] = []

    async def sample_rss() -> None:
        while True:
            await asyncio.sleep(seconds / 10)
            samples.append({name: rss_mb(p.pid) for name, p in processes.items()})

    sampler = asyncio.create_task(sample_rss())
    began = time.perf_counter()
    tallies = await open_loop(clients, rates, seconds)
    wall = time.perf_counter() - began
    sampler.cancel()
    rss_end = {name: rss_mb(p.pid) for name, p in processes.items()}
    for kind, tally in tallies.items():
        print(tally.line(kind, wall))
        for code, message in tally.messages.items():
            print(f"       {code}: {message}")
    print("  RSS (MB) at the drill's start → end (peak; every tenth of the drill):")
    for name in processes:
        growth = (rss_end[name] - rss_start[name]) / rss_start[name]
        timeline = [sample[name] for sample in samples]
        peak = max([rss_start[name], rss_end[name], *timeline])
        print(
            f"    {name:<8} {rss_start[name]:7.1f} → {rss_end[name]:7.1f}  ({growth:+.1%}; "
            f"peak {peak:.1f}; " + " ".join(f"{v:.0f}" for v in timeline) + ")"
        )
    report["drill"] = {
        "minutes": args.minutes,
        "load": args.load,
        "wall_s": wall,
        "kinds": {
            kind: {
                "sessions": len(t.latencies),
                "per_s": len(t.latencies) / wall,
                "audio_s_per_s": t.audio_s / wall,
                "p50_ms": float(np.percentile(t.latencies, 50) * 1000) if t.latencies else None,
                "p99_ms": float(np.percentile(t.latencies, 99) * 1000) if t.latencies else None,
                "errors": dict(t.errors),
                "messages": t.messages,
            }
            for kind, t in tallies.items()
        },
        "rss_mb": {"start": rss_start, "end": rss_end, "every_tenth": samples},
    }
    print(f"overload: {args.overload:g} × max_concurrent_streams")
    report["overload_failures"] = await overload(clients, args.stream_limit, args.overload)
    await clients.channel.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--load", type=float, default=0.8, help="share of measured capacity")
    parser.add_argument("--probe-s", type=float, default=45.0)
    parser.add_argument("--probe-sessions", type=int, default=3)
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--stream-limit", type=int, default=32)
    parser.add_argument("--overload", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, live
    processes, address = start_mesh(args.stream_limit)
    try:
        report = asyncio.run(drill(args, processes, address))
    finally:
        for process in processes.values():
            stop(process)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    errors = sum(sum(k["errors"].values()) for k in report["drill"]["kinds"].values())
    return 0 if errors == 0 and not report["overload_failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
