"""`speechmesh transcribe` against a real STT server: unary with words, and live streaming."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import soundfile as sf
from support import SENTENCES, piper_say, word_error_rate

CLI = [sys.executable, "-m", "speechmesh.cli.main"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180)


def write_speech(path, sentences):
    parts, rate = [], 22050
    for sentence in sentences:
        audio, rate = piper_say(sentence)
        parts += [np.zeros(int(0.8 * rate), np.float32), audio]
    parts.append(np.zeros(int(0.8 * rate), np.float32))
    sf.write(path, np.concatenate(parts), rate, subtype="PCM_16")


def test_transcribe_prints_text_and_words_as_json(stt_server, tmp_path):
    wav = tmp_path / "speech.wav"
    write_speech(wav, SENTENCES[:1])
    result = cli("transcribe", str(wav), "--json", "--words", "--address", stt_server.address)
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert word_error_rate(SENTENCES[0], response["text"]) <= 0.15
    assert len(response["words"]) >= 8 and response["language"] == "en"
    table = cli("transcribe", str(wav), "--address", stt_server.address)
    assert table.returncode == 0 and "whisper-tiny.en" in table.stdout


def test_transcribe_stream_prints_interims_then_finals(stt_server, tmp_path):
    wav = tmp_path / "two.wav"
    write_speech(wav, SENTENCES[1:3])
    result = cli("transcribe", str(wav), "--stream", "--address", stt_server.address)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    interims = [line for line in lines if line.startswith("…")]
    finals = [line for line in lines if line.startswith("[")]
    assert interims and len(finals) == 2
    assert word_error_rate(SENTENCES[1], finals[0].split("]", 1)[1]) <= 0.15
    assert lines.index(interims[0]) < lines.index(finals[0])
    assert lines[-1].startswith("end of stream")


def test_transcribe_reports_a_bad_option(stt_server, tmp_path):
    wav = tmp_path / "speech.wav"
    write_speech(wav, SENTENCES[:1])
    result = cli("transcribe", str(wav), "--language", "xx", "--address", stt_server.address)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "options.language" in result.stderr
