"""Every sample a client streams is accounted for, through the gateway, however the
bytes are cut (chunks of 1 byte to 9 kB, cutting samples in two): the last response's
processed_samples is the number sent, offsets never pass it nor go back, VAD finds the
segments of the unary Detect, and STT's results and events lie inside the audio."""

from __future__ import annotations

import itertools

import grpc
import numpy as np
import pytest
from support import gateway_config, speech_in_silence, start_server, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

pytestmark = pytest.mark.xdist_group("gateway")


def pcm(rate: int) -> audio_pb2.AudioFormat:
    return audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate)


def cut(data: bytes, seed: int) -> list[bytes]:
    sizes = np.random.default_rng(seed).integers(1, 9000, len(data))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [data[a:b] for a, b in itertools.pairwise(bounds) if a < len(data)]


@pytest.fixture(scope="module")
def gateway(vad_server, stt_server, tmp_path_factory):
    config = gateway_config({"vad": vad_server.address, "stt": stt_server.address})
    server = start_server("gateway", config, tmp_path_factory.mktemp("accounting"))
    with server.channel() as channel:
        listed = vad_pb2_grpc.VoiceActivityStub(channel)
        request = vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=pcm(16000), data=b"\0\0"))

        def routed() -> bool:
            try:
                return listed.Detect(request, timeout=10).total_samples == 1
            except grpc.RpcError:
                return False

        wait_until(routed)
    yield server
    server.stop()


@pytest.mark.parametrize(("rate", "seed"), [(16000, 1), (16000, 2), (8000, 3), (22050, 4)])
def test_vad_counts_every_streamed_sample(gateway, rate, seed):
    clip = speech_in_silence([0.7, 0.9, 0.5], rate=rate)
    data, total = clip.pcm16(), len(clip.audio)
    config = vad_pb2.StreamingDetectConfig(format=pcm(rate))
    requests = [vad_pb2.StreamingDetectRequest(config=config)]
    requests += [
        vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=c)) for c in cut(data, seed)
    ]
    with gateway.channel() as channel:
        stub = vad_pb2_grpc.VoiceActivityStub(channel)
        responses = list(stub.StreamingDetect(iter(requests), timeout=60))
        whole = stub.Detect(
            vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=pcm(rate), data=data)), timeout=60
        )
    processed = [r.processed_samples for r in responses]
    assert processed == sorted(processed) and processed[-1] == total == whole.total_samples
    assert responses[-1].end_of_stream and responses[-1].sample_rate_hz == rate
    ends = [r.event.segment for r in responses if r.event.type == vad_pb2.SPEECH_EVENT_TYPE_END]
    assert ends == list(whole.segments) and len(ends) == 2
    for response in responses:
        if response.HasField("event"):
            segment = response.event.segment
            assert segment.start_sample < max(segment.end_sample, segment.start_sample + 1)
            assert segment.end_sample <= total
            assert response.event.decided_at_sample <= response.processed_samples


def test_stt_counts_every_streamed_sample(gateway):
    clip = speech_in_silence([0.6, 1.0, 0.6], rate=16000)
    data, total = clip.pcm16(), len(clip.audio)
    config = stt_pb2.StreamingRecognizeConfig(format=pcm(16000), interim_results=True)
    requests = [stt_pb2.StreamingRecognizeRequest(config=config)]
    requests += [
        stt_pb2.StreamingRecognizeRequest(audio=audio_pb2.AudioChunk(data=c)) for c in cut(data, 5)
    ]
    with gateway.channel() as channel:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        responses = list(stub.StreamingRecognize(iter(requests), timeout=120))
    processed = [r.processed_samples for r in responses]
    assert processed == sorted(processed) and processed[-1] == total
    assert responses[-1].end_of_stream and responses[-1].sample_rate_hz == 16000
    finals = [r for response in responses for r in response.results if r.is_final]
    assert [r.utterance_index for r in finals] == [0, 1]
    for result in (r for response in responses for r in response.results):
        assert result.start_sample < result.end_sample <= total
    ends = [
        r.speech_event for r in responses if r.speech_event.type == stt_pb2.SPEECH_EVENT_TYPE_END
    ]
    assert len(ends) == 2 and all(e.end_sample <= total for e in ends)
    # Each utterance's speech holds the speech that was placed there.
    for event, (start, end) in zip(ends, clip.truth, strict=True):
        slack = 0.1 * clip.rate
        assert event.start_sample <= start + slack and event.end_sample >= end - slack
