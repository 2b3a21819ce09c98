"""The HTTP listener drains with the gateway: on SIGTERM a response in flight runs to its
end, and the listener stops taking new requests."""

from __future__ import annotations

import signal

import httpx
import pytest
from conftest import http_address, http_gateway
from support import SENTENCES, word_error_rate

from speechmesh.runtime.audio import AudioSpec, Encoding, decode


def test_a_response_in_flight_finishes_after_sigterm(backends, tmp_path, client):
    server = http_gateway(backends, tmp_path)
    url = http_address(server)
    text = ". ".join(SENTENCES[:4]) + "."
    body = {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav"}
    try:
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=60) as response:
            chunks = response.iter_raw()
            first = next(chunks)
            server.process.send_signal(signal.SIGTERM)
            data = first + b"".join(chunks)
        assert server.process.wait(30) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health")
    finally:
        server.stop()
    assert decode(data, AudioSpec(Encoding.WAV)).duration_s > 6
    heard = client.audio.transcriptions.create(model="whisper-1", file=("drained.wav", data))
    assert word_error_rate(" ".join(SENTENCES[:4]), heard.text) <= 0.15, heard.text
