"""Gateways with their HTTP listener on, in front of the session's real servers."""

from __future__ import annotations

import re

from support import RunningServer, gateway_config, start_server, wait_until

ALSO_SERVES = re.compile(r"speechmesh gateway also serves (http://\S+)")
ALIASES = {"tts-1": "piper-joe", "whisper-1": "whisper-tiny.en"}
ROUND_TRIP = {
    "description": "Text spoken and transcribed again.",
    "steps": [
        {"id": "tts", "op": "OP_SYNTHESIZE", "model": "piper-joe", "inputs": {"text": "$text"}},
        {"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "tts.audio"}},
    ],
    "outputs": ["tts.audio", "stt.transcript"],
}


def http_address(server: RunningServer) -> str:
    """The listener's address, from the line the gateway prints once it listens."""
    found: list[str] = []

    def printed() -> bool:
        found.extend(m.group(1) for line in server.log if (m := ALSO_SERVES.search(line)))
        return bool(found)

    wait_until(printed, timeout_s=30)
    return found[0]


def http_gateway(
    backends: dict[str, str],
    folder,
    overrides: dict | None = None,
    env: dict[str, str] | None = None,
    wait_serving: bool = True,
    http: dict | None = None,
) -> RunningServer:
    """A gateway with its listener on any free port; overrides replace config sections,
    http adds to gateway.http."""
    config = gateway_config(backends, **(overrides or {}))
    config["gateway"]["http"] = {
        "enabled": True,
        "port": 0,
        "model_aliases": ALIASES,
        **(http or {}),
    }
    config["gateway"]["graphs"] = {"round-trip": ROUND_TRIP}
    return start_server("gateway", config, folder, env=env, wait_serving=wait_serving)
