"""Fixtures shared by every suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import RunningServer, start_server, stt_config, vad_config
from tts_support import tts_config, write_tiny_kittentts


@pytest.fixture(scope="session")
def vad_server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """A real VAD server (the embedded Silero model) shared by a test session."""
    server = start_server("vad", vad_config(), tmp_path_factory.mktemp("vad"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stt_server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """A real STT server (whisper tiny.en and Silero VAD from wheels) shared by a session."""
    server = start_server("stt", stt_config(), tmp_path_factory.mktemp("stt"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tts_server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """A real TTS server shared by a test session: the embedded Piper voice (default) and
    a tiny KittenTTS model in the official layout."""
    folder = tmp_path_factory.mktemp("tts")
    kitten = write_tiny_kittentts(folder / "kitten", {"expr-voice-2-f": 0.8})
    models = [
        {"id": "piper-joe", "family": "piper", "max_batch_size": 1, "default": True},
        {"id": "kitten-tiny", "family": "kittentts", "source": str(kitten)},
    ]
    server = start_server("tts", tts_config(models), folder)
    yield server
    server.stop()
