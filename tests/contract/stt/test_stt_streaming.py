"""StreamingRecognize on real speech: finals, interims, events, offsets, isolation."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import soundfile as sf
from stt_clients import finals, recognize_request, stream_requests
from support import SENTENCES, piper_say, word_error_rate

from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc


def stream(server, requests, timeout=120):
    with server.channel() as channel:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        return list(stub.StreamingRecognize(requests, timeout=timeout))


def silence(seconds, rate):
    return (np.random.default_rng(5).standard_normal(int(seconds * rate)) * 1e-4).astype(np.float32)


def conversation(sentences, gap_s=1.2):
    """Sentences with pauses between them; (audio, rate, [(start, end)] of each sentence)."""
    parts, spans, cursor, rate = [], [], 0, 22050
    for sentence in sentences:
        audio, rate = piper_say(sentence)
        gap = silence(gap_s, rate)
        parts += [gap, audio]
        spans.append((cursor + len(gap), cursor + len(gap) + len(audio)))
        cursor += len(gap) + len(audio)
    parts.append(silence(gap_s, rate))
    return np.concatenate(parts), rate, spans


def events(responses, kind):
    return [r.speech_event for r in responses if r.speech_event.type == kind]


def test_finals_match_the_unary_transcript(stt_server):
    audio, rate, spans = conversation(SENTENCES[:3])
    options = stt_pb2.RecognitionOptions(word_timestamps=True)
    responses = stream(stt_server, stream_requests(audio, rate, options=options))
    results = finals(responses)
    assert [r.utterance_index for r in results] == [0, 1, 2]
    streamed = " ".join(r.alternatives[0].transcript for r in results)
    with stt_server.channel() as channel:
        unary = stt_pb2_grpc.SpeechToTextStub(channel).Recognize(
            recognize_request(audio, rate), timeout=120
        )
    reference = " ".join(SENTENCES[:3])
    assert word_error_rate(reference, streamed) <= word_error_rate(reference, unary.text) + 0.05
    assert word_error_rate(unary.text, streamed) <= 0.05
    # Each final and its words sit inside its utterance, on the stream's own timeline.
    for result, (start, end) in zip(results, spans, strict=True):
        assert result.start_sample <= start + rate // 10 and end - rate // 10 <= result.end_sample
        words = result.alternatives[0].words
        assert words and all(
            result.start_sample <= w.start_sample <= w.end_sample <= result.end_sample
            for w in words
        )
        assert [w.start_sample for w in words] == sorted(w.start_sample for w in words)
    last = responses[-1]
    assert last.end_of_stream and last.processed_samples == len(audio)
    assert last.sample_rate_hz == rate


def test_a_single_utterance_streams_to_the_unary_transcript(stt_server):
    """One utterance, streamed in 100 ms chunks, hears the very samples Recognize hears
    (the same resampler, fed piece by piece), so its final is the unary text."""
    clips = sorted((Path(__file__).parents[2] / "data" / "stt").glob("espeak-*.flac"))[:3]
    assert clips
    for clip in clips:
        audio, rate = sf.read(clip, dtype="float32")
        streamed = finals(stream(stt_server, stream_requests(audio, rate)))
        with stt_server.channel() as channel:
            unary = stt_pb2_grpc.SpeechToTextStub(channel).Recognize(
                recognize_request(audio, rate), timeout=120
            )
        assert [r.alternatives[0].transcript for r in streamed] == [unary.text], clip.name


def test_speech_events_bracket_each_final(stt_server):
    audio, rate, spans = conversation(SENTENCES[3:5])
    responses = stream(stt_server, stream_requests(audio, rate))
    starts = events(responses, stt_pb2.SPEECH_EVENT_TYPE_START)
    ends = events(responses, stt_pb2.SPEECH_EVENT_TYPE_END)
    assert [e.utterance_index for e in starts] == [0, 1] == [e.utterance_index for e in ends]
    for start, end, (truth_start, truth_end) in zip(starts, ends, spans, strict=True):
        assert abs(start.start_sample - truth_start) < 0.3 * rate
        assert abs(end.end_sample - truth_end) < 0.4 * rate
        assert end.decided_at_sample >= end.end_sample
    # Sent faster than real time, the next utterance may open before a final is
    # decoded; what holds is: START k < END k < final k, and END k < START k+1.
    position = {}
    for index, response in enumerate(responses):
        event = response.speech_event
        if event.type in (stt_pb2.SPEECH_EVENT_TYPE_START, stt_pb2.SPEECH_EVENT_TYPE_END):
            position[(event.type, event.utterance_index)] = index
        for result in response.results:
            if result.is_final:
                position[("final", result.utterance_index)] = index
    for k in (0, 1):
        start, end = stt_pb2.SPEECH_EVENT_TYPE_START, stt_pb2.SPEECH_EVENT_TYPE_END
        assert position[(start, k)] < position[(end, k)] < position[("final", k)]
    assert position[(end, 0)] < position[(start, 1)]


def test_interim_results_arrive_before_the_utterance_ends(stt_server):
    speech, rate = piper_say(SENTENCES[2])
    audio = np.concatenate([silence(0.5, rate), speech, silence(1.2, rate)])
    responses = stream(
        stt_server,
        stream_requests(audio, rate, pace=1.0, interim=True, interim_interval_ms=300),
    )
    final = finals(responses)[0]
    interims = [(response, r) for response in responses for r in response.results if not r.is_final]
    assert interims, "no interim result"
    # Heard before the end of the utterance: the hypothesis covered less audio than the final.
    first_response, first = interims[0]
    assert first.end_sample < final.end_sample
    assert first_response.processed_samples < 0.5 * rate + len(speech)
    # Committed words never change: each interim's committed text starts the final.
    final_words = final.alternatives[0].transcript.split()
    for _, result in interims:
        if result.stability == 1.0:
            committed = result.alternatives[0].transcript.split()
            assert final_words[: len(committed)] == committed
        assert result.utterance_index == final.utterance_index


def test_trailing_speech_gets_a_final_at_half_close(stt_server):
    speech, rate = piper_say(SENTENCES[0])
    audio = np.concatenate([silence(0.5, rate), speech])  # no pause at the end
    responses = stream(stt_server, stream_requests(audio, rate))
    results = finals(responses)
    assert len(results) == 1
    assert word_error_rate(SENTENCES[0], results[0].alternatives[0].transcript) <= 0.15
    assert responses[-1].end_of_stream


def test_faster_than_real_time_loses_nothing(stt_server):
    audio, rate, _ = conversation(SENTENCES, gap_s=1.0)
    # 20 ms chunks as fast as the client can send them.
    responses = stream(stt_server, stream_requests(audio, rate, chunk_s=0.02))
    text = " ".join(r.alternatives[0].transcript for r in finals(responses))
    assert word_error_rate(" ".join(SENTENCES), text) <= 0.15, text
    assert responses[-1].processed_samples == len(audio)


def test_two_concurrent_streams_do_not_mix(stt_server):
    clips = [conversation(SENTENCES[0:2]), conversation(SENTENCES[4:6])]
    outputs: list = [None, None]

    def run(index):
        audio, rate, _ = clips[index]
        try:
            outputs[index] = stream(
                stt_server, stream_requests(audio, rate, pace=4.0, interim=True)
            )
        except Exception as error:  # reported by the main thread
            outputs[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    for responses, sentences in zip(outputs, (SENTENCES[0:2], SENTENCES[4:6]), strict=True):
        assert isinstance(responses, list), responses
        request_ids = {r.request_id for r in responses}
        assert len(request_ids) == 1
        text = " ".join(r.alternatives[0].transcript for r in finals(responses))
        assert word_error_rate(" ".join(sentences), text) <= 0.15, text


def test_single_utterance_stops_after_the_first_final(stt_server):
    audio, rate, _ = conversation(SENTENCES[:3])
    responses = stream(stt_server, stream_requests(audio, rate, single_utterance=True))
    assert len(finals(responses)) == 1
    assert events(responses, stt_pb2.SPEECH_EVENT_TYPE_END_OF_SINGLE_UTTERANCE)
    assert responses[-1].end_of_stream
    assert responses[-1].processed_samples < len(audio)
