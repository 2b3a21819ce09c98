"""Fixtures shared by every suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from checkpoints import save_openvoice, save_voicefixer
from support import RunningServer, conversion_config, start_server, stt_config, vad_config
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


CONVERSION_EMBEDDED_MODELS = [
    {"id": "ge2e-resemblyzer", "family": "ge2e-resemblyzer"},
    {"id": "deepfilternet3", "family": "deepfilternet3"},
    # Two threads: jobs of concurrent streams run side by side.
    {"id": "rnnoise", "family": "rnnoise", "threads": 2},
]


@pytest.fixture(scope="session")
def conversion_server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """The real embedded models, and tiny OpenVoice and VoiceFixer checkpoints, over real gRPC."""
    root = tmp_path_factory.mktemp("conversion")
    tiny = []
    for version in ("v2", "v1"):
        save_openvoice(root / f"openvoice-{version}", version)
        tiny.append(
            {
                "id": f"openvoice-{version}-tiny",
                "family": f"openvoice-{version}",
                "source": str(root / f"openvoice-{version}"),
            }
        )
    save_voicefixer(root / "voicefixer")
    tiny.append(
        {"id": "voicefixer-tiny", "family": "voicefixer", "source": str(root / "voicefixer")}
    )
    server = start_server("conversion", conversion_config(CONVERSION_EMBEDDED_MODELS + tiny), root)
    yield server
    server.stop()
