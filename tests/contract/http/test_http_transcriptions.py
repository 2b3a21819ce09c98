"""POST /v1/audio/transcriptions and /translations through the official OpenAI client:
every response format, uploads in every container, and streamed transcription events."""

from __future__ import annotations

import io
import re

import av
import numpy as np
import openai
import pytest
from support import SENTENCES, piper_say, word_error_rate

from speechmesh.runtime.audio import AudioSpec, Encoding, encode

TEXT = SENTENCES[1]
SRT_CUE = re.compile(r"^\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n.+$", re.S)
VTT_TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}$")


def speech(encoding: Encoding = Encoding.WAV, text: str = TEXT) -> bytes:
    samples, rate = piper_say(text)
    return encode(samples, rate, AudioSpec(encoding))


def two_sentences(encoding: Encoding = Encoding.WAV) -> tuple[bytes, str]:
    """Two sentences with a pause between them, and what they say."""
    first, rate = piper_say(SENTENCES[0])
    second, _ = piper_say(SENTENCES[4])
    pause = np.zeros(int(0.8 * rate), np.float32)
    samples = np.concatenate([first, pause, second])
    return encode(samples, rate, AudioSpec(encoding)), f"{SENTENCES[0]} {SENTENCES[4]}"


def m4a(text: str = TEXT) -> bytes:
    """AAC in MP4, as phones record it."""
    samples, rate = piper_say(text)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def test_json_and_text_carry_the_transcript(client):
    upload = ("speech.wav", speech())
    result = client.audio.transcriptions.create(model="whisper-1", file=upload)
    assert word_error_rate(TEXT, result.text) <= 0.1, result.text
    text = client.audio.transcriptions.create(
        model="whisper-1", file=upload, response_format="text", language="en"
    )
    assert isinstance(text, str) and text.strip() == result.text.strip()


def test_verbose_json_has_segments_and_words_in_seconds(client):
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("speech.wav", speech()),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.task == "transcribe" and result.language == "en"
    samples, rate = piper_say(TEXT)
    assert result.duration == pytest.approx(len(samples) / rate, abs=0.01)
    words = [w.word.strip(".,").lower() for w in result.words]
    assert words[:3] == ["please", "turn", "off"], words
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and all(w.end > w.start for w in result.words)
    assert 0 <= result.words[0].start < result.words[-1].end <= result.duration + 0.1
    assert result.segments and result.segments[0].start <= result.words[0].start + 0.01
    assert result.segments[0].seek == 0 and len(result.segments[0].tokens) > 3
    assert word_error_rate(TEXT, " ".join(s.text for s in result.segments)) <= 0.1
    only_words = client.audio.transcriptions.create(
        model="whisper-1",
        file=("speech.wav", speech()),
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert only_words.words and not getattr(only_words, "segments", None)


def test_srt_and_vtt_are_valid_captions(client):
    data, said = two_sentences()
    upload = ("speech.wav", data)
    srt = client.audio.transcriptions.create(model="whisper-1", file=upload, response_format="srt")
    cues = [block for block in srt.strip().split("\n\n") if block]
    assert cues and all(SRT_CUE.match(cue) for cue in cues), srt
    assert [int(cue.split("\n")[0]) for cue in cues] == list(range(1, len(cues) + 1))
    vtt = client.audio.transcriptions.create(model="whisper-1", file=upload, response_format="vtt")
    header, *blocks = vtt.strip().split("\n\n")
    assert header == "WEBVTT"
    assert blocks and all(VTT_TIME.match(block.split("\n")[0]) for block in blocks), vtt
    assert len(blocks) == len(cues)
    spoken = " ".join(block.split("\n", 1)[1] for block in blocks)
    assert word_error_rate(said, spoken) <= 0.1, spoken


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("speech.mp3", lambda: speech(Encoding.MP3)),
        ("speech.aac", lambda: speech(Encoding.AAC)),
        ("speech.m4a", m4a),
        ("speech.ogg", lambda: speech(Encoding.OGG_VORBIS)),
        ("speech.opus", lambda: speech(Encoding.OGG_OPUS)),
        ("speech.webm", lambda: speech(Encoding.WEBM_OPUS)),
        ("speech.flac", lambda: speech(Encoding.FLAC)),
    ],
)
def test_uploads_in_every_container_are_transcribed(client, name, make):
    result = client.audio.transcriptions.create(model="whisper-1", file=(name, make()))
    assert word_error_rate(TEXT, result.text) <= 0.1, result.text


def test_streamed_transcription_sends_deltas_then_the_whole_text(client):
    data, said = two_sentences(Encoding.MP3)
    stream = client.audio.transcriptions.create(
        model="whisper-1", file=("speech.mp3", data), stream=True
    )
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}
    assert len(kinds) >= 3  # one delta per utterance
    joined = "".join(event.delta for event in events[:-1])
    assert joined == events[-1].text
    assert word_error_rate(said, events[-1].text) <= 0.1, events[-1].text


def test_translation_by_an_english_only_model_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.audio.translations.create(model="whisper-1", file=("speech.wav", speech()))
    error = excinfo.value.body
    assert error["type"] == "invalid_request_error" and error["param"] == "options.task"
    assert "English-only" in error["message"]
