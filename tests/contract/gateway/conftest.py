"""A gateway in front of the session's real VAD, STT and TTS servers."""

from __future__ import annotations

import pytest
from support import RunningServer, gateway_config, start_server

ROUND_TRIP = {
    "description": "Text spoken and transcribed again.",
    "steps": [
        {"id": "tts", "op": "OP_SYNTHESIZE", "model": "piper-joe", "inputs": {"text": "$text"}},
        {"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "tts.audio"}},
    ],
    "outputs": ["tts.audio", "stt.transcript"],
}
CLEAN_TRANSCRIBE = {
    "steps": [
        {
            "id": "clean",
            "op": "OP_RESTORE",
            "model": "deepfilternet3",
            "inputs": {"audio": "$audio"},
        },
        {"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "clean.audio"}},
    ],
    "outputs": ["clean.audio", "stt.transcript"],
}


@pytest.fixture(scope="module")
def gateway(
    vad_server, stt_server, tts_server, conversion_server, tmp_path_factory
) -> RunningServer:
    config = gateway_config(
        {
            "vad": vad_server.address,
            "stt": stt_server.address,
            "tts": tts_server.address,
            "conversion": conversion_server.address,
        }
    )
    config["gateway"]["graphs"] = {"round-trip": ROUND_TRIP, "clean-transcribe": CLEAN_TRANSCRIBE}
    server = start_server("gateway", config, tmp_path_factory.mktemp("gateway"))
    yield server
    server.stop()
