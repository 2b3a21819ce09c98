"""The routes beyond OpenAI's, in Harmony Speech Engine's JSON shapes: speaker embedding,
voice conversion, voice activity, restoration, and orchestrator graphs."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from support import SENTENCE, SENTENCES, piper_say, speech_in_silence, word_error_rate

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.audio import AudioSpec, Encoding, decode, encode


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def spoken(encoding: Encoding = Encoding.WAV) -> bytes:
    return encode(*piper_say(SENTENCE), AudioSpec(encoding))


@pytest.fixture(scope="module")
def http(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


def test_embed_speaker_returns_a_tagged_embedding(http):
    response = http.post("/v1/embed/speaker", json={"input_audio": b64(spoken(Encoding.MP3))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "ge2e-resemblyzer" and body["created"] > 0
    # One request id names the request in the reply and in the mesh's gRPC calls.
    assert body["id"] == response.headers["x-request-id"] and len(body["id"]) == 32
    chosen = http.post(
        "/v1/audio/vad", json={"input_audio": b64(spoken())}, headers={"x-request-id": "req-7"}
    )
    assert chosen.headers["x-request-id"] == chosen.json()["id"] == "req-7"
    embedding = audio_pb2.SpeakerEmbedding.FromString(base64.b64decode(body["data"]))
    assert embedding.model_family == body["model_family"] == "ge2e-resemblyzer"
    assert len(embedding.values) == body["size"] == 256
    assert np.linalg.norm(embedding.values) == pytest.approx(1.0, abs=1e-3)


def test_voice_conversion_speaks_the_source_in_the_target_voice(http):
    source = b64(spoken())
    target = b64(encode(*piper_say(SENTENCES[1]), AudioSpec(Encoding.OGG_OPUS)))
    response = http.post(
        "/v1/voice/convert",
        json={
            "model": "openvoice-v2-tiny",
            "source_audio": source,
            "target_audio": target,
            "output_options": {"format": "flac", "sample_rate": 16000},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "openvoice-v2-tiny"
    converted = decode(base64.b64decode(body["data"]), AudioSpec(Encoding.FLAC))
    samples, rate = piper_say(SENTENCE)
    assert converted.sample_rate_hz == 16000
    assert converted.duration_s == pytest.approx(len(samples) / rate, abs=0.1)
    missing = http.post("/v1/voice/convert", json={"source_audio": source})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "target_audio"
    # An embedding of another family is refused by the service, field named.
    ge2e = http.post("/v1/embed/speaker", json={"input_audio": source}).json()["data"]
    wrong = http.post(
        "/v1/voice/convert",
        json={"model": "openvoice-v2-tiny", "source_audio": source, "target_embedding": ge2e},
    )
    assert wrong.status_code == 400 and "ge2e" in wrong.json()["error"]["message"]


def test_vad_finds_the_speech_in_seconds(http):
    clip = speech_in_silence([1.0, 1.0])
    wav = encode(clip.audio, clip.rate, AudioSpec(Encoding.WAV))
    body = http.post("/v1/audio/vad", json={"input_audio": b64(wav)}).json()
    assert body["model"] == "silero-vad" and body["speech_activity"] is True
    (segment,) = body["timestamps"]
    start, end = clip.truth[0]
    assert segment["start"] == pytest.approx(start / clip.rate, abs=0.1)
    assert segment["end"] == pytest.approx(end / clip.rate, abs=0.15)
    assert body["duration"] == pytest.approx(len(clip.audio) / clip.rate, abs=1e-3)


def test_restoration_returns_audio_in_the_asked_format(http, client):
    samples, rate = piper_say(SENTENCE)
    noisy = samples + np.random.default_rng(1).normal(0, 0.01, len(samples)).astype(np.float32)
    response = http.post(
        "/v1/audio/restore",
        json={
            "model": "rnnoise",
            "input_audio": b64(encode(noisy, rate, AudioSpec(Encoding.WAV))),
            "output_options": {"format": "mp3"},
        },
    )
    assert response.status_code == 200, response.text
    restored = base64.b64decode(response.json()["data"])
    assert decode(restored, AudioSpec(Encoding.MP3)).duration_s == pytest.approx(
        len(samples) / rate, abs=0.15
    )
    text = client.audio.transcriptions.create(model="whisper-1", file=("r.mp3", restored)).text
    assert word_error_rate(SENTENCE, text) <= 0.15, text


def test_bad_audio_payloads_are_400_naming_the_field(http):
    not_b64 = http.post("/v1/embed/speaker", json={"input_audio": "%%%"})
    assert not_b64.status_code == 400 and not_b64.json()["error"]["param"] == "input_audio"
    noise = b64(np.random.default_rng(2).integers(0, 256, 3000, np.uint8).tobytes())
    unreadable = http.post("/v1/audio/vad", json={"input_audio": noise})
    assert unreadable.status_code == 400
    assert unreadable.json()["error"]["code"] == "invalid_file_format"


def test_a_graph_streams_its_outputs_as_events(http):
    with http.stream(
        "POST",
        "/v1/graphs/round-trip",
        json={
            "inputs": {"text": {"text": SENTENCE}},
            "output_format": {"encoding": "AUDIO_ENCODING_PCM_S16LE"},
        },
    ) as response:
        assert response.status_code == 200
        events = [
            json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")
        ]
    outputs = [e["output"] for e in events if "output" in e]
    transcripts = [o["transcript"] for o in outputs if "transcript" in o]
    said = " ".join(t["alternatives"][0]["transcript"] for t in transcripts)
    assert word_error_rate(SENTENCE, said) <= 0.15, said
    assert any("audio" in o for o in outputs)
    assert "summary" in events[-1]
    unknown = http.post("/v1/graphs/no-such-graph", json={})
    assert unknown.status_code == 404
