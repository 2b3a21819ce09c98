"""Fixtures shared by every suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import RunningServer, start_server, vad_config
from tts_support import tts_config


@pytest.fixture(scope="session")
def vad_server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """A real VAD server (the embedded Silero model) shared by a test session."""
    server = start_server("vad", vad_config(), tmp_path_factory.mktemp("vad"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tts_server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """A real TTS server (the embedded Piper voice) shared by a test session."""
    server = start_server("tts", tts_config(), tmp_path_factory.mktemp("tts"))
    yield server
    server.stop()
