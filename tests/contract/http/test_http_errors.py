"""Errors in OpenAI's shape with OpenAI's statuses, keys and size limits, models, health
and the generated docs, through the official client where it has a call for them."""

from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest
from http_gateways import http_address, http_gateway
from support import SENTENCE, piper_say

from speechmesh.runtime.audio import AudioSpec, Encoding, encode

KEY = "http-test-key"
MAX_BODY = 200_000
ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def strict_url(backends, tmp_path_factory) -> str:
    """A gateway with API keys on and a small body limit."""
    server = http_gateway(
        backends,
        tmp_path_factory.mktemp("strict-gateway"),
        overrides={
            "auth": {"enabled": True, "keys_env": "HTTP_TEST_KEYS"},
            "limits": {"max_message_bytes": MAX_BODY},
        },
        env={"HTTP_TEST_KEYS": KEY, "SPEECHMESH_BACKEND_KEY": KEY},
        http={"cors_origins": [ORIGIN]},
    )
    yield http_address(server)
    server.stop()


def wav(seconds: float = 1.0) -> bytes:
    samples, rate = piper_say(SENTENCE)
    return encode(np.resize(samples, int(seconds * rate)), rate, AudioSpec(Encoding.WAV))


def assert_openai_error(body: dict, kind: str) -> None:
    assert set(body) == {"message", "type", "param", "code"}, body
    assert body["type"] == kind and body["message"]


def test_a_bad_key_is_401_and_a_good_one_passes(strict_url):
    bad = openai.OpenAI(base_url=f"{strict_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as excinfo:
        bad.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    assert_openai_error(excinfo.value.body, "authentication_error")
    assert excinfo.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    good = openai.OpenAI(base_url=f"{strict_url}/v1", api_key=KEY, max_retries=0)
    assert {"piper-joe", "whisper-tiny.en", "tts-1"} <= {m.id for m in good.models.list()}
    # Health and docs need no key, as gRPC health needs none.
    assert httpx.get(f"{strict_url}/health").status_code == 200


def test_a_browser_page_of_an_allowed_origin_may_call(strict_url):
    preflight = {"origin": ORIGIN, "access-control-request-method": "POST"}
    preflight["access-control-request-headers"] = "authorization,content-type"
    answer = httpx.options(f"{strict_url}/v1/audio/speech", headers=preflight)
    assert answer.status_code == 200  # a preflight carries no key
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(
        f"{strict_url}/v1/audio/speech", headers={**preflight, "origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    call = httpx.get(
        f"{strict_url}/v1/models", headers={"origin": ORIGIN, "authorization": f"Bearer {KEY}"}
    )
    assert call.status_code == 200 and call.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in call.headers["access-control-expose-headers"]
    refused = httpx.get(f"{strict_url}/v1/models", headers={"origin": ORIGIN})
    assert refused.status_code == 401


def test_an_oversized_upload_is_413_before_it_is_read(strict_url):
    client = openai.OpenAI(base_url=f"{strict_url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as excinfo:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", wav(6.0)))
    assert excinfo.value.status_code == 413
    assert_openai_error(excinfo.value.body, "request_too_large")
    assert "max_message_bytes" in excinfo.value.body["message"]
    # A body without a length is counted as it arrives.
    chunks = (b"\0" * 50_000 for _ in range(10))
    response = httpx.post(
        f"{strict_url}/v1/audio/speech",
        content=chunks,
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    assert response.status_code == 413
    # Under the limit the same gateway transcribes.
    assert client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav(2.0))).text


def test_an_unknown_model_is_404_naming_the_models(client):
    with pytest.raises(openai.NotFoundError) as excinfo:
        client.audio.speech.create(model="no-such-voice-model", voice="alloy", input="Hi.")
    body = excinfo.value.body
    assert_openai_error(body, "not_found_error")
    assert body["code"] == "model_not_found" and "piper-joe" in body["message"]
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(model="no-such-model", file=("a.wav", wav()))


def test_an_unreadable_file_is_400_naming_the_file(client):
    garbage = np.random.default_rng(3).integers(0, 256, 20_000, np.uint8).tobytes()
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.audio.transcriptions.create(model="whisper-1", file=("noise.mp3", garbage))
    assert_openai_error(excinfo.value.body, "invalid_request_error")
    assert excinfo.value.body["param"] == "file"
    # Looks like MP3 to the sniffer, but is cut short inside its frames.
    mp3 = encode(*piper_say(SENTENCE), AudioSpec(Encoding.MP3))
    broken = mp3[:40] + garbage[:4000]
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.audio.transcriptions.create(model="whisper-1", file=("cut.mp3", broken))
    assert "MP3" in excinfo.value.body["message"]


def test_bad_parameters_are_400(client, base_url):
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=9.0)
    assert excinfo.value.body["param"] == "speed"
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="no-such-voice", input="")
    response = httpx.post(f"{base_url}/v1/audio/speech", json={"input": "no model"})
    assert response.status_code == 400
    assert_openai_error(response.json()["error"], "invalid_request_error")


def test_an_unknown_voice_is_404_and_openai_voices_speak(client):
    with pytest.raises(openai.NotFoundError) as excinfo:
        client.audio.speech.create(model="tts-1", voice="no-such-voice", input="Hello.")
    assert "voice" in excinfo.value.body["message"]
    assert excinfo.value.body["code"] is None  # the model exists
    for voice in ("alloy", "shimmer"):
        assert client.audio.speech.create(model="tts-1", voice=voice, input="Hi.").content


def test_models_list_every_model_in_openai_shape(client):
    models = client.models.list()
    assert models.object == "list"
    by_id = {m.id: m for m in models}
    assert {"piper-joe", "whisper-tiny.en", "silero-vad", "deepfilternet3"} <= set(by_id)
    assert by_id["piper-joe"].object == "model" and by_id["piper-joe"].owned_by == "speechmesh"
    assert by_id["tts-1"].alias_of == "piper-joe"
    assert "TASK_SPEECH_SYNTHESIS" in by_id["piper-joe"].tasks


def test_health_and_docs(base_url):
    assert httpx.get(f"{base_url}/health").json() == {"status": "SERVING"}
    docs = httpx.get(f"{base_url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = httpx.get(f"{base_url}/openapi.json").json()
    assert {"/v1/audio/speech", "/v1/audio/transcriptions", "/v1/models"} <= set(schema["paths"])
    missing = httpx.get(f"{base_url}/v1/nothing-here")
    assert missing.status_code == 404
    assert_openai_error(missing.json()["error"], "not_found_error")
