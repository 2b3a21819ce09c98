"""The Node.js example of docs/clients.md, run against a real server when node is here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
from support import npm_install, speech_in_silence

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node/npm not installed"
)


def test_node_example_finds_the_speech(vad_server, tmp_path):
    env = npm_install(EXAMPLE / "package.json", tmp_path)
    clip = speech_in_silence([1.0, 1.3, 0.7])
    wav = tmp_path / "speech.wav"
    sf.write(wav, clip.audio, clip.rate, subtype="PCM_16")
    result = subprocess.run(
        ["node", str(EXAMPLE / "detect.js"), str(wav), vad_server.address],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("2 segment(s)")
    for line, (start, end) in zip(lines[:2], clip.truth, strict=True):
        shown_start, shown_end = (
            float(x) for x in line.removeprefix("speech ").replace(" s", "").split(" – ")
        )
        assert abs(shown_start - start / clip.rate) <= 0.1
        assert abs(shown_end - end / clip.rate) <= 0.1
