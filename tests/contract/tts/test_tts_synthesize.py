"""TextToSpeech over real gRPC: round trip through speech recognition, streaming and bidi
equal to unary, offsets, formats, ListModels, and a KittenTTS model behind the same RPCs."""

from __future__ import annotations

import numpy as np
import pytest
from support import word_error_rate
from tts_support import kitten_waveform, transcribe

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime.audio import AudioSpec, Encoding, decode
from speechmesh.runtime.text import split_text
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("tts")

PARAGRAPH = (
    "The weather was warm and bright this morning. We walked to the small market near the "
    "river. My sister bought fresh bread and some apples. Then we sat in the park and talked "
    "for an hour."
)
DETERMINISTIC = tts_pb2.SynthesisOptions(piper=tts_pb2.PiperOptions(noise_scale=0, noise_w=0))


def fmt(encoding: int, rate: int = 0) -> audio_pb2.AudioFormat:
    return audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate)


def stub(channel) -> tts_pb2_grpc.TextToSpeechStub:
    return tts_pb2_grpc.TextToSpeechStub(channel)


def unary(server, text=PARAGRAPH, options=DETERMINISTIC, output=None, model=""):
    with server.channel() as channel:
        return stub(channel).Synthesize(
            tts_pb2.SynthesizeRequest(
                text=text, options=options, output_format=output or fmt(0), model=model
            ),
            timeout=120,
        )


def streamed(server, text=PARAGRAPH, options=DETERMINISTIC, output=None):
    with server.channel() as channel:
        request = tts_pb2.StreamingSynthesizeRequest(
            text=text, options=options, output_format=output or fmt(0)
        )
        return list(stub(channel).StreamingSynthesize(request, timeout=120))


def chunks_of(responses) -> list[tts_pb2.SynthesisChunk]:
    return [r.chunk for r in responses if r.HasField("chunk")]


def test_round_trip_through_speech_recognition_keeps_the_words(tts_server):
    reply = unary(tts_server, options=tts_pb2.SynthesisOptions())
    audio = decode(reply.audio.data, AudioSpec(Encoding.WAV))
    assert audio.sample_rate_hz == 22050 == reply.summary.sample_rate_hz
    heard = transcribe(audio.samples, audio.sample_rate_hz)
    assert word_error_rate(PARAGRAPH, heard) <= 0.15, heard


def test_streaming_concatenated_equals_unary_sample_for_sample(tts_server):
    whole = unary(tts_server, output=fmt(audio_pb2.AUDIO_ENCODING_PCM_S16LE))
    responses = streamed(tts_server)
    chunks = chunks_of(responses)
    assert b"".join(c.audio.data for c in chunks) == whole.audio.data
    summary = responses[-1].summary
    assert summary.total_samples == whole.summary.total_samples == len(whole.audio.data) // 2
    assert summary.num_spans == 4 and summary.num_chars == len(PARAGRAPH)


def test_resampled_float_stream_equals_resampled_unary(tts_server):
    output = fmt(audio_pb2.AUDIO_ENCODING_PCM_F32LE, 16000)
    whole = unary(tts_server, output=output)
    chunks = chunks_of(streamed(tts_server, output=output))
    assert whole.audio.format.sample_rate_hz == 16000 == chunks[0].format.sample_rate_hz
    assert b"".join(c.audio.data for c in chunks) == whole.audio.data


def test_chunks_account_for_every_sample_and_map_to_sentences(tts_server):
    chunks = chunks_of(streamed(tts_server))
    pieces = split_text(PARAGRAPH, 400)
    offset = 0
    for chunk in chunks:
        assert chunk.audio.sample_offset == offset
        assert chunk.audio.num_samples == len(chunk.audio.data) // 2
        assert chunk.format.encoding == audio_pb2.AUDIO_ENCODING_PCM_S16LE
        offset += chunk.audio.num_samples
    spans = [(c.span.index, c.span.start_char, c.span.end_char) for c in chunks if c.end_of_span]
    assert spans == [(p.index, p.start_char, p.end_char) for p in pieces]
    assert [c.span.index for c in chunks] == sorted(c.span.index for c in chunks)


def bidi(server, pieces, options=DETERMINISTIC, output=None):
    def requests():
        config = tts_pb2.BidiSynthesizeConfig(options=options, output_format=output or fmt(0))
        yield tts_pb2.BidiSynthesizeRequest(config=config)
        for piece in pieces:
            if piece is None:
                yield tts_pb2.BidiSynthesizeRequest(flush=tts_pb2.Flush())
            else:
                yield tts_pb2.BidiSynthesizeRequest(text=piece)

    with server.channel() as channel:
        return list(stub(channel).BidiSynthesize(requests(), timeout=120))


def test_bidi_word_by_word_gives_the_unary_audio(tts_server):
    words = [word + " " for word in PARAGRAPH.split(" ")]
    responses = bidi(tts_server, words)
    whole = unary(tts_server, output=fmt(audio_pb2.AUDIO_ENCODING_PCM_S16LE))
    assert b"".join(c.audio.data for c in chunks_of(responses)) == whole.audio.data
    summary = responses[-1].summary
    assert summary.num_chars == len(PARAGRAPH) + 1 and summary.num_spans == 4


def test_bidi_flush_speaks_pending_text_and_reports_where_it_stands(tts_server):
    responses = bidi(tts_server, ["Hello there. How are", None, " you today?"])
    kinds = [r.WhichOneof("response") for r in responses]
    flush_at = kinds.index("flush_done")
    before = chunks_of(responses[:flush_at])
    done = responses[flush_at].flush_done
    assert (done.flush_index, done.end_char) == (0, len("Hello there. How are"))
    assert done.end_sample == sum(c.audio.num_samples for c in before)
    assert {(c.span.start_char, c.span.end_char) for c in before if c.end_of_span} == {
        (0, 12),
        (13, 20),
    }
    after = chunks_of(responses[flush_at:])
    assert [(c.span.start_char, c.span.end_char) for c in after if c.end_of_span] == [(21, 31)]
    assert kinds[-1] == "summary"


@pytest.mark.parametrize(
    ("encoding", "rate", "decoded_rate"),
    [
        (audio_pb2.AUDIO_ENCODING_WAV, 0, 22050),
        (audio_pb2.AUDIO_ENCODING_FLAC, 16000, 16000),
        (audio_pb2.AUDIO_ENCODING_OGG_OPUS, 0, 48000),
        (audio_pb2.AUDIO_ENCODING_MP3, 0, 22050),
        (audio_pb2.AUDIO_ENCODING_AAC, 16000, 16000),
        (audio_pb2.AUDIO_ENCODING_OGG_VORBIS, 0, 22050),
        (audio_pb2.AUDIO_ENCODING_WEBM_OPUS, 0, 48000),
    ],
)
def test_containers_stream_into_one_file_like_the_unary_one(
    tts_server, encoding, rate, decoded_rate
):
    text = "Streaming audio. In one container."
    whole = unary(tts_server, text=text, output=fmt(encoding, rate))
    responses = streamed(tts_server, text=text, output=fmt(encoding, rate))
    data = b"".join(c.audio.data for c in chunks_of(responses))
    spec = AudioSpec(Encoding(encoding))
    one, other = decode(whole.audio.data, spec), decode(data, spec)
    assert one.sample_rate_hz == other.sample_rate_hz == decoded_rate
    if encoding == audio_pb2.AUDIO_ENCODING_OGG_OPUS:
        assert abs(len(one.samples) - len(other.samples)) <= 2 * 960
    elif encoding not in (audio_pb2.AUDIO_ENCODING_WAV, audio_pb2.AUDIO_ENCODING_FLAC):
        # Lossy frames: the stream is the same sound, give or take a frame of delay
        # (a streamed MP3 has no LAME tag to trim the encoder's delay with).
        assert abs(one.duration_s - other.duration_s) < 0.12
        assert lagged_correlation(one.samples, other.samples) > 0.9
    else:
        np.testing.assert_array_equal(one.samples, other.samples)


def lagged_correlation(one, other):
    """Correlation of two decodings of the same sound at their best alignment."""
    size = min(len(one), len(other)) - 4096
    lags = np.correlate(other[: size + 4096], one[2048 : 2048 + size // 2], "valid")
    lag = int(np.argmax(np.abs(lags))) - 2048
    a, b = (one[-lag:], other) if lag < 0 else (one, other[lag:])
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def test_list_models_reports_voices_languages_and_rates(tts_server):
    with tts_server.channel() as channel:
        reply = models_pb2_grpc.ModelsStub(channel).ListModels(
            models_pb2.ListModelsRequest(task=models_pb2.TASK_SPEECH_SYNTHESIS), timeout=10
        )
    models = {m.id: m for m in reply.models}
    assert set(models) == {"piper-joe", "kitten-tiny"}
    piper, kitten = models["piper-joe"], models["kitten-tiny"]
    assert (piper.family, piper.native_sample_rate_hz, list(piper.languages)) == (
        "piper",
        22050,
        ["en-US"],
    )
    assert [(v.id, list(v.languages)) for v in piper.voices] == [("joe", ["en-US"])]
    assert piper.service == "speechmesh.tts.v1.TextToSpeech"
    assert piper.state == models_pb2.MODEL_STATE_READY
    assert kitten.native_sample_rate_hz == 24000
    assert {v.display_name for v in kitten.voices} >= {"Bella", "Leo", "Kiki"}


def test_a_kittentts_model_speaks_through_the_same_rpcs(tts_server):
    text = "Hello there. Nice to meet you"
    options = tts_pb2.SynthesisOptions(voice="Bella", speed=1.5)
    output = fmt(audio_pb2.AUDIO_ENCODING_PCM_F32LE)
    reply = unary(tts_server, text, options, output, "kitten-tiny")
    assert reply.model == "kitten-tiny" and reply.audio.format.sample_rate_hz == 24000
    # Bella is expr-voice-2-f, whose speed prior in the fixture is 0.8.
    expected = np.concatenate(
        [
            kitten_waveform(s, "expr-voice-2-f", 1.5 * 0.8)
            for s in ("Hello there.", "Nice to meet you")
        ]
    )
    np.testing.assert_allclose(
        np.frombuffer(reply.audio.data, "<f4"), expected, rtol=1e-5, atol=1e-6
    )
