"""The HTTP listener's life with the gateway's server: it drains with it (a response in
flight at SIGTERM runs to its end) and it serves whatever TLS the gRPC port demands."""

from __future__ import annotations

import signal

import httpx
import pytest
from certificates import make_pair, needs_openssl
from http_gateways import http_address, http_gateway
from support import SENTENCES, wait_until, word_error_rate

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


@needs_openssl
def test_http_serves_while_the_grpc_port_demands_client_certificates(backends, tmp_path, client):
    """The listener reaches the gateway over its own local socket, so a gateway whose
    public port wants mutual TLS still answers HTTP (with the same keys, here none)."""
    ca = make_pair(tmp_path, "ca")
    key, cert = make_pair(tmp_path, "gateway", ca)
    tls = {"cert_file": str(cert), "key_file": str(key), "client_ca_file": str(ca[1])}
    server = http_gateway(backends, tmp_path, overrides={"tls": tls}, wait_serving=False)
    try:
        url = http_address(server)
        wait_until(lambda: httpx.get(f"{url}/health").status_code == 200)
        speech = httpx.post(
            f"{url}/v1/audio/speech",
            json={
                "model": "tts-1",
                "input": SENTENCES[0],
                "voice": "alloy",
                "response_format": "flac",
            },
            timeout=60,
        )
        assert speech.status_code == 200, speech.text
        heard = client.audio.transcriptions.create(
            model="whisper-1", file=("tls.flac", speech.content)
        )
        # Piper's noise makes each synthesis differ a little: one word of the nine may
        # come back in another form ("jumps" heard as "jumped").
        assert word_error_rate(SENTENCES[0], heard.text) <= 0.12, heard.text
    finally:
        server.stop()
