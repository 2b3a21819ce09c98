"""A Node.js client (tests/node) synthesizes and transcribes through the gateway."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support import SENTENCES, npm_install, word_error_rate

CLIENT = Path(__file__).resolve().parents[2] / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node/npm not installed"
)


def test_node_client_round_trip_through_the_gateway(gateway, tmp_path):
    env = npm_install(CLIENT / "package.json", tmp_path)
    text = f"{SENTENCES[1]}. {SENTENCES[4]}."
    result = subprocess.run(
        ["node", str(CLIENT / "round_trip.js"), gateway.address, text],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert int(lines["chunks"]) >= 2
    assert word_error_rate(text, lines["transcript"]) <= 0.15, lines["transcript"]
    assert lines["samples"].endswith("at 16000 Hz")
