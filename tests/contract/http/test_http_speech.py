"""POST /v1/audio/speech through the official OpenAI client: every response format,
whole, streamed and as server-sent events, decoded back and transcribed again."""

from __future__ import annotations

import base64
import json
import time

import httpx
import numpy as np
import pytest
from support import SENTENCE, SENTENCES, word_error_rate

from speechmesh.runtime.audio import AudioSpec, Encoding, decode, encode

FORMATS = {
    "mp3": Encoding.MP3,
    "opus": Encoding.OGG_OPUS,
    "aac": Encoding.AAC,
    "flac": Encoding.FLAC,
    "wav": Encoding.WAV,
}
TEXT = "Please turn off the lights before you leave."


def as_file(data: bytes, response_format: str) -> bytes:
    """What the transcription route takes: OpenAI's pcm (24 kHz s16) needs a container."""
    if response_format != "pcm":
        return data
    samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768
    return encode(samples, 24000, AudioSpec(Encoding.WAV))


def decoded_seconds(data: bytes, response_format: str) -> float:
    if response_format == "pcm":
        return len(data) / 2 / 24000
    return decode(data, AudioSpec(FORMATS[response_format])).duration_s


def transcript(client, data: bytes, response_format: str) -> str:
    upload = ("speech.bin", as_file(data, response_format))
    return client.audio.transcriptions.create(model="whisper-1", file=upload).text


@pytest.mark.parametrize("response_format", [*FORMATS, "pcm"])
def test_speech_in_each_format_decodes_and_is_heard_again(client, response_format):
    response = client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,
        response_format=response_format,
        instructions="Speak calmly.",  # accepted; Piper takes no instructions
    )
    data = response.content
    assert 1.5 < decoded_seconds(data, response_format) < 6
    assert word_error_rate(TEXT, transcript(client, data, response_format)) <= 0.15


@pytest.mark.parametrize("response_format", [*FORMATS, "pcm"])
def test_streamed_speech_is_one_file_like_the_whole_one(client, response_format):
    whole = client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format=response_format
    ).content
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format=response_format
    ) as response:
        pieces = list(response.iter_bytes())
    streamed = b"".join(pieces)
    # Piper's duration predictor samples noise: two syntheses differ by a few frames.
    one, other = decoded_seconds(streamed, response_format), decoded_seconds(whole, response_format)
    assert abs(one - other) < 0.2 * other, (one, other)
    assert word_error_rate(SENTENCE, transcript(client, streamed, response_format)) <= 0.15


def test_speech_as_server_sent_events_carries_the_audio(client):
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input=SENTENCE, response_format="wav", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")
        ]
    assert [e["type"] for e in events[-1:]] == ["speech.audio.done"]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert deltas
    data = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert word_error_rate(SENTENCE, transcript(client, data, "wav")) <= 0.15


def test_the_first_audio_arrives_before_synthesis_ends(base_url):
    """A browser-style client reading the body as it comes: of five sentences, the first
    one's audio arrives while the others are still being synthesized."""
    text = ". ".join(SENTENCES[:5]) + "."
    body = {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "pcm"}
    with httpx.Client(timeout=60) as http:
        started = time.perf_counter()
        with http.stream("POST", f"{base_url}/v1/audio/speech", json=body) as response:
            assert response.status_code == 200
            chunks = response.iter_raw()
            first = next(chunks)
            first_at = time.perf_counter() - started
            rest = b"".join(chunks)
        ended_at = time.perf_counter() - started
    total = len(first) + len(rest)
    assert first and len(first) < total / 2, (len(first), total)
    # Unloaded: the first chunk at about a fifth of the whole (one sentence of five).
    assert first_at < 0.6 * ended_at, (first_at, ended_at)
