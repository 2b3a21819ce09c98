"""A gateway in front of the session's real VAD and STT servers."""

from __future__ import annotations

import pytest
from support import RunningServer, gateway_config, start_server


@pytest.fixture(scope="module")
def gateway(vad_server, stt_server, tmp_path_factory) -> RunningServer:
    config = gateway_config({"vad": vad_server.address, "stt": stt_server.address})
    server = start_server("gateway", config, tmp_path_factory.mktemp("gateway"))
    yield server
    server.stop()
