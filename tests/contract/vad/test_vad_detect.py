"""Detect and StreamingDetect on real speech, over real gRPC."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from support import RunningServer, speech_in_silence

from speechmesh.audio.v1 import audio_pb2
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

# Padding off and a silence longer than the voice's pauses between words: one segment
# per sentence, whose edges must match where the speech really is.
EXACT = vad_pb2.VadOptions(speech_pad_ms=0, min_silence_duration_ms=300)
TOLERANCE_S = 0.100


def pcm16_format(rate: int) -> audio_pb2.AudioFormat:
    return audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate)


def detect(server: RunningServer, audio: audio_pb2.Audio, options=EXACT) -> vad_pb2.DetectResponse:
    with server.channel() as channel:
        return vad_pb2_grpc.VoiceActivityStub(channel).Detect(
            vad_pb2.DetectRequest(audio=audio, options=options), timeout=60
        )


def stream(server, fmt, data: bytes, chunk_sizes, options=EXACT) -> list:
    def requests():
        yield vad_pb2.StreamingDetectRequest(
            config=vad_pb2.StreamingDetectConfig(format=fmt, options=options, request_id="s-1")
        )
        offset = 0
        for size in chunk_sizes:
            if offset >= len(data):
                break
            yield vad_pb2.StreamingDetectRequest(
                audio=audio_pb2.AudioChunk(data=data[offset : offset + size])
            )
            offset += size
        if offset < len(data):
            yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=data[offset:]))

    with server.channel() as channel:
        return list(vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(requests(), timeout=60))


def random_sizes(seed: int, low: int = 1, high: int = 9000) -> list[int]:
    rng = np.random.default_rng(seed)
    return list(rng.integers(low, high, size=100_000))


def test_detect_finds_each_sentence_within_100ms(vad_server):
    clip = speech_in_silence([1.2, 1.5, 0.8])
    response = detect(
        vad_server, audio_pb2.Audio(format=pcm16_format(clip.rate), data=clip.pcm16())
    )
    assert response.sample_rate_hz == clip.rate
    assert response.total_samples == len(clip.audio)
    assert len(response.segments) == len(clip.truth), response
    for segment, (start, end) in zip(response.segments, clip.truth, strict=True):
        assert abs(segment.start_sample - start) / clip.rate <= TOLERANCE_S
        assert abs(segment.end_sample - end) / clip.rate <= TOLERANCE_S
        assert segment.start_ms == pytest.approx(segment.start_sample * 1000 / clip.rate)


def test_detect_reads_wav_and_flac_at_their_own_rate(vad_server):
    clip = speech_in_silence([0.7, 0.9], rate=8000)
    for encoding, subtype, fmt in (
        (audio_pb2.AUDIO_ENCODING_WAV, "PCM_16", "WAV"),
        (audio_pb2.AUDIO_ENCODING_FLAC, "PCM_16", "FLAC"),
    ):
        buffer = io.BytesIO()
        sf.write(buffer, clip.audio, clip.rate, subtype=subtype, format=fmt)
        response = detect(
            vad_server,
            audio_pb2.Audio(
                format=audio_pb2.AudioFormat(encoding=encoding), data=buffer.getvalue()
            ),
        )
        assert response.sample_rate_hz == 8000
        (segment,) = response.segments
        start, end = clip.truth[0]
        assert abs(segment.start_sample - start) / clip.rate <= TOLERANCE_S
        assert abs(segment.end_sample - end) / clip.rate <= TOLERANCE_S


def test_default_padding_widens_segments(vad_server):
    clip = speech_in_silence([1.0, 1.0])
    audio = audio_pb2.Audio(format=pcm16_format(clip.rate), data=clip.pcm16())
    exact = detect(vad_server, audio).segments[0]
    padded = detect(vad_server, audio, vad_pb2.VadOptions(min_silence_duration_ms=300)).segments[0]
    pad = round(0.030 * clip.rate)
    assert padded.start_sample == pytest.approx(exact.start_sample - pad, abs=2)
    assert padded.end_sample == pytest.approx(exact.end_sample + pad, abs=2)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_streaming_gives_the_segments_of_detect(vad_server, rate):
    clip = speech_in_silence([0.9, 1.1, 0.4, 0.6], rate=rate)
    data, fmt = clip.pcm16(), pcm16_format(rate)
    whole = detect(vad_server, audio_pb2.Audio(format=fmt, data=data))
    assert len(whole.segments) == 3
    for seed in (1, 2):
        responses = stream(vad_server, fmt, data, random_sizes(seed))
        ends = [r.event.segment for r in responses if r.event.type == vad_pb2.SPEECH_EVENT_TYPE_END]
        assert ends == list(whole.segments)
        last = responses[-1]
        assert last.end_of_stream and last.processed_samples == len(clip.audio)
        assert all(r.request_id == "s-1" for r in responses)


def test_stream_events_alternate_and_come_before_the_audio_ends(vad_server):
    clip = speech_in_silence([0.5, 1.0, 1.5], rate=16000)
    responses = stream(vad_server, pcm16_format(16000), clip.pcm16(), [640] * 10_000)
    events = [r for r in responses if r.HasField("event")]
    kinds = [r.event.type for r in events]
    assert kinds == [vad_pb2.SPEECH_EVENT_TYPE_START, vad_pb2.SPEECH_EVENT_TYPE_END] * 2
    for response in events:
        segment = response.event.segment
        offset = segment.end_sample if segment.end_sample else segment.start_sample
        # Decided with bounded look-ahead (min_speech 250 ms or min_silence 300 ms, rounded
        # up to whole 32 ms windows, plus the deciding window), long before the stream ends,
        # and reported once that much audio had arrived.
        assert response.event.decided_at_sample - offset <= 0.300 * 16000 + 2 * 512
        assert response.processed_samples >= response.event.decided_at_sample
        assert response.processed_samples < len(clip.audio)


def test_streaming_wav_header_first(vad_server):
    clip = speech_in_silence([0.6, 0.8], rate=16000)
    buffer = io.BytesIO()
    sf.write(buffer, clip.audio, clip.rate, subtype="PCM_16", format="WAV")
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV)
    responses = stream(vad_server, fmt, buffer.getvalue(), random_sizes(3, 1, 700))
    (end,) = [r.event.segment for r in responses if r.event.type == vad_pb2.SPEECH_EVENT_TYPE_END]
    assert abs(end.start_sample - clip.truth[0][0]) / clip.rate <= TOLERANCE_S
    assert responses[-1].sample_rate_hz == 16000
