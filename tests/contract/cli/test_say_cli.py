"""`speechmesh say` against a real TTS server: whole files, streamed files, stdout, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from speechmesh.runtime.audio import AudioSpec, Encoding, decode

pytestmark = pytest.mark.xdist_group("tts")

CLI = [sys.executable, "-m", "speechmesh.cli.main"]
TEXT = "Hello from the command line. It streams too."


def say(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, "say", *args], capture_output=True, timeout=120, input=stdin and stdin.encode()
    )


def test_say_writes_a_wav_file_and_streaming_writes_the_same_audio(tts_server, tmp_path):
    whole, streamed = tmp_path / "whole.wav", tmp_path / "streamed.wav"
    result = say(TEXT, "-o", str(whole), "--address", tts_server.address)
    assert result.returncode == 0, result.stderr.decode()
    assert b"2 sentence(s)" in result.stderr
    result = say(TEXT, "-o", str(streamed), "--stream", "--address", tts_server.address)
    assert result.returncode == 0, result.stderr.decode()
    assert b"first audio after" in result.stderr
    # The streamed file's header was patched, so any WAV reader takes it.
    one, rate = sf.read(whole, dtype="float32")
    other, other_rate = sf.read(streamed, dtype="float32")
    assert rate == other_rate == 22050
    assert abs(len(one) - len(other)) < 0.5 * rate  # default noise: lengths vary a little


def test_say_streams_raw_pcm_to_stdout_at_the_asked_rate(tts_server):
    result = say(
        "-", "-o", "-", "--format", "pcm", "--rate", "16000", "--stream",
        "--address", tts_server.address, stdin=TEXT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    samples = np.frombuffer(result.stdout, "<i2")
    assert 1.5 < len(samples) / 16000 < 6


def test_say_formats_from_the_suffix(tts_server, tmp_path):
    out = tmp_path / "speech.flac"
    result = say("Short.", "-o", str(out), "--voice", "joe", "--address", tts_server.address)
    assert result.returncode == 0, result.stderr.decode()
    assert decode(out.read_bytes(), AudioSpec(Encoding.FLAC)).sample_rate_hz == 22050


def test_say_reports_a_failed_call_and_unknown_formats(tts_server, tmp_path):
    result = say(
        "Hi.", "-o", str(tmp_path / "x.wav"), "--voice", "amy", "--address", tts_server.address
    )
    assert result.returncode == 1
    assert b"NOT_FOUND" in result.stderr and b"joe" in result.stderr
    result = say("Hi.", "-o", str(tmp_path / "x.mp3"), "--address", tts_server.address)
    assert result.returncode != 0 and b"unknown audio format" in result.stderr
