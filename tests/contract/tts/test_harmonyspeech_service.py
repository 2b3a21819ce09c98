"""HarmonySpeech V1 served by the TTS service: tiny random checkpoints in the official
layout, a real server, real gRPC."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
import soundfile
from harmonyspeech_checkpoint import save_snapshot
from support import RunningServer, start_server

from speechmesh.audio.v1 import audio_pb2
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("harmonyspeech-tts")
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
TEXT = "Hello there. How are you today?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    root = save_snapshot(tmp_path_factory.mktemp("harmony") / "harmony-speech-v1")
    models = [
        {
            "id": "harmony-synth",
            "family": "harmonyspeech-synthesizer",
            "source": str(root),
            "options": {"paired_vocoder": "harmony-vocoder"},
        },
        {"id": "harmony-vocoder", "family": "harmonyspeech-vocoder", "source": str(root)},
    ]
    config = {"services": {"tts": {"port": 0, "models": models}}, "drain_grace_s": 5}
    running = start_server("tts", config, tmp_path_factory.mktemp("harmony-srv"))
    yield running
    running.stop()


def embedding(family: str = "harmonyspeech-v1", size: int = 6, seed: int = 0):
    values = np.random.default_rng(seed).normal(size=size)
    return audio_pb2.SpeakerEmbedding(
        model_family=family, model="enc", values=(values / np.linalg.norm(values)).tolist()
    )


def options(**fields) -> tts_pb2.SynthesisOptions:
    return tts_pb2.SynthesisOptions(speaker_embedding=fields.pop("speaker", embedding()), **fields)


def spectrogram(stub, text=TEXT, **fields) -> tts_pb2.SynthesizeSpectrogramResponse:
    request = tts_pb2.SynthesizeSpectrogramRequest(
        model="harmony-synth", text=text, options=options(**fields)
    )
    return stub.SynthesizeSpectrogram(request, timeout=60)


def frames_of(response) -> int:
    return list(response.mel.shape)[1]


def test_spectrogram_then_vocode_gives_frames_times_200_samples(server: RunningServer):
    with server.channel() as channel:
        tts = tts_pb2_grpc.TextToSpeechStub(channel)
        mel = spectrogram(tts)
        again = spectrogram(tts)
        vocoded = tts_pb2_grpc.VocoderStub(channel).Vocode(
            tts_pb2.VocodeRequest(model=mel.vocoder, mel=mel.mel, output_format=F32), timeout=60
        )
    assert mel.model == "harmony-synth" and mel.vocoder == "harmony-vocoder"
    assert mel.mel.shape[0] == 80 and frames_of(mel) > 0 and mel.mel.kind
    assert (mel.sample_rate_hz, mel.samples_per_frame) == (16000, 200)
    assert again.mel.data == mel.mel.data  # deterministic
    assert vocoded.total_samples == frames_of(mel) * 200
    assert len(vocoded.audio.data) == vocoded.total_samples * 4


def test_speed_halves_the_frames(server: RunningServer):
    with server.channel() as channel:
        tts = tts_pb2_grpc.TextToSpeechStub(channel)
        normal, fast = spectrogram(tts, "Hello there."), spectrogram(tts, "Hello there.", speed=2)
    symbols = len("hello there.~")
    assert abs(frames_of(fast) - frames_of(normal) / 2) <= symbols / 2


def test_streaming_vocode_is_vocode_before_its_normalisation(server: RunningServer):
    with server.channel() as channel:
        mel = spectrogram(tts_pb2_grpc.TextToSpeechStub(channel)).mel
        vocoder = tts_pb2_grpc.VocoderStub(channel)
        whole = vocoder.Vocode(
            tts_pb2.VocodeRequest(model="harmony-vocoder", mel=mel, output_format=F32), timeout=60
        )
        values = np.frombuffer(mel.data, "<f4").reshape(list(mel.shape))

        def requests():
            yield tts_pb2.StreamingVocodeRequest(
                config=tts_pb2.StreamingVocodeConfig(model="harmony-vocoder", output_format=F32)
            )
            for start in range(0, values.shape[1], 5):
                part = np.ascontiguousarray(values[:, start : start + 5])
                yield tts_pb2.StreamingVocodeRequest(
                    mel=audio_pb2.Tensor(
                        shape=list(part.shape),
                        dtype=audio_pb2.DATA_TYPE_FLOAT32,
                        data=part.tobytes(),
                        kind=mel.kind,
                    )
                )

        streamed = list(vocoder.StreamingVocode(requests(), timeout=60))
    audio = np.frombuffer(b"".join(r.audio.data for r in streamed), "<f4").astype(np.float64)
    expected = np.frombuffer(whole.audio.data, "<f4")
    assert len(streamed) > 2 and streamed[-1].end_of_stream
    # Vocode scales the whole spectrogram's audio to a peak of 0.97; a stream cannot.
    assert np.abs(expected).max() == pytest.approx(0.97, abs=1e-6)
    np.testing.assert_allclose(audio / np.abs(audio).max() * 0.97, expected, atol=1e-5)


def test_synthesize_reads_the_whole_text_as_one_sequence(server: RunningServer):
    with server.channel() as channel:
        tts = tts_pb2_grpc.TextToSpeechStub(channel)
        mel = spectrogram(tts, TEXT)
        response = tts.Synthesize(
            tts_pb2.SynthesizeRequest(model="harmony-synth", text=TEXT, options=options()),
            timeout=60,
        )
    audio, rate = soundfile.read(io.BytesIO(response.audio.data), dtype="float32")
    silence = int(0.15 * 16000)
    assert rate == 16000 and response.summary.num_spans == 1
    assert len(audio) == frames_of(mel) * 200 + silence
    assert np.abs(audio).max() == pytest.approx(0.97, abs=1e-3)
    assert not audio[-silence:].any()


def test_streaming_synthesize_goes_sentence_by_sentence(server: RunningServer):
    with server.channel() as channel:
        tts = tts_pb2_grpc.TextToSpeechStub(channel)
        mels = [spectrogram(tts, sentence) for sentence in ("Hello there.", "How are you today?")]
        request = tts_pb2.StreamingSynthesizeRequest(
            model="harmony-synth", text=TEXT, options=options(), output_format=F32
        )
        responses = list(tts.StreamingSynthesize(request, timeout=60))
    audio = np.frombuffer(b"".join(r.chunk.audio.data for r in responses), "<f4")
    silence = int(0.15 * 16000)
    assert responses[-1].summary.num_spans == 2
    assert len(audio) == sum(frames_of(m) * 200 + silence for m in mels)
    first = frames_of(mels[0]) * 200
    assert np.abs(audio[:first]).max() == pytest.approx(0.97, abs=1e-6)
    assert not audio[first : first + silence].any() and not audio[-silence:].any()


def test_embeddings_of_other_families_or_sizes_are_refused(server: RunningServer):
    with server.channel() as channel:
        tts = tts_pb2_grpc.TextToSpeechStub(channel)
        assert frames_of(spectrogram(tts, speaker=embedding("ge2e-resemblyzer"))) > 0
        cases = {
            "speaker_embedding.model_family": embedding("openvoice-v2"),
            "speaker_embedding.values": embedding(size=7),
        }
        for field, speaker in cases.items():
            with pytest.raises(grpc.RpcError) as error:
                spectrogram(tts, speaker=speaker)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in error.value.details()
        with pytest.raises(grpc.RpcError) as error:
            tts.Synthesize(tts_pb2.SynthesizeRequest(model="harmony-synth", text="Hi."), timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "speaker_embedding" in error.value.details()


@pytest.mark.parametrize(("text", "reason"), [("   ", "empty"), ("🙂 {HH AY}", "speakable")])
def test_empty_or_unspeakable_text_is_refused(server: RunningServer, text, reason):
    with server.channel() as channel, pytest.raises(grpc.RpcError) as error:
        spectrogram(tts_pb2_grpc.TextToSpeechStub(channel), text)
    assert (
        error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason in error.value.details()
    )


def test_a_mel_with_the_wrong_bands_is_refused(server: RunningServer):
    mel = np.zeros((40, 10), np.float32)
    tensor = audio_pb2.Tensor(shape=[40, 10], dtype=audio_pb2.DATA_TYPE_FLOAT32, data=mel.tobytes())
    with server.channel() as channel, pytest.raises(grpc.RpcError) as error:
        tts_pb2_grpc.VocoderStub(channel).Vocode(
            tts_pb2.VocodeRequest(model="harmony-vocoder", mel=tensor), timeout=30
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "80 mel bands" in error.value.details()
