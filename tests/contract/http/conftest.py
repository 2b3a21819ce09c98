"""A gateway with its HTTP listener in front of the session's real servers, and an
OpenAI client pointed at it."""

from __future__ import annotations

import openai
import pytest
from http_gateways import http_address, http_gateway
from support import RunningServer


@pytest.fixture(scope="module")
def backends(vad_server, stt_server, tts_server, conversion_server) -> dict[str, str]:
    return {
        "vad": vad_server.address,
        "stt": stt_server.address,
        "tts": tts_server.address,
        "conversion": conversion_server.address,
    }


@pytest.fixture(scope="module")
def gateway(backends, tmp_path_factory) -> RunningServer:
    server = http_gateway(backends, tmp_path_factory.mktemp("http-gateway"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def base_url(gateway) -> str:
    return http_address(gateway)


@pytest.fixture(scope="module")
def client(base_url) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
