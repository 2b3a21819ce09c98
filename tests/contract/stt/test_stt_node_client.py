"""The Node.js streaming example of docs/clients.md, against a real STT server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support import SENTENCES, npm_install, piper_say, word_error_rate

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node/npm not installed"
)


def test_node_example_streams_and_prints_finals(stt_server, tmp_path):
    env = npm_install(EXAMPLE / "package.json", tmp_path)
    speech, rate = piper_say(SENTENCES[4])
    gap = np.zeros(int(0.8 * rate), np.float32)
    wav = tmp_path / "speech.wav"
    sf.write(wav, np.concatenate([gap, speech, gap]), rate, subtype="PCM_16")
    result = subprocess.run(
        ["node", str(EXAMPLE / "transcribe.js"), str(wav), stt_server.address, "--fast"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("speech start")
    final = next(line for line in lines if line.startswith("final 0: "))
    assert word_error_rate(SENTENCES[4], final.removeprefix("final 0: ")) <= 0.15
    words = next(line for line in lines if line.startswith("words "))
    times = [float(w.rsplit("@", 1)[1]) for w in words.removeprefix("words ").split()]
    assert times == sorted(times) and 0.5 <= times[0] <= times[-1] <= len(speech) / rate + 1.6
    assert lines[-1] == f"end of stream after {2 * len(gap) + len(speech)} samples"
