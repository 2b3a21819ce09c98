"""HarmonySpeech V1 against harmony-speech-engine (fixtures: scripts/parity/harmonyspeech.py).

The reference's tiny weights, in the official `harmony-speech-v1` layout, are served by a
real TTS server (synthesizer and vocoder) and a real conversion server (the encoder);
every RPC of the family is called over gRPC and compared with what the reference engine
returned for the same request: symbol ids exactly, mel frames and the number of
samples exactly, mels, float audio and embeddings within 1e-5 of the reference's peak,
and 16-bit WAV samples within one step (the reference's soundfile scales floats by
32767, the service by 32768, as for every family: at a peak of 0.97 the two differ by
less than one step before rounding).
"""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
import soundfile
from support import RunningServer, conversion_config, start_server

from parity.support import ReferenceRun, assert_close, relative_error, streamed_f32
from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.runtime.text import split_text
from speechmesh.services.conversion.encoder.ge2e import modules as ge2e
from speechmesh.services.tts.harmonyspeech import text as harmony_text
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("harmonyspeech-parity")
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
WAV = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV)
REFERENCE = ReferenceRun("harmonyspeech")
SYNTHESES = [c for c in REFERENCE.cases if c["kind"] == "synthesize"]
EMBEDS = [c for c in REFERENCE.cases if c["kind"] == "embed"]
(VOCODE,) = [c for c in REFERENCE.cases if c["kind"] == "vocode"]


def names(cases):
    return [c["name"] for c in cases]


@pytest.fixture(scope="module")
def tts(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    snapshot = str(REFERENCE.file("snapshot"))
    models = [
        {
            "id": "harmony-synth",
            "family": "harmonyspeech-synthesizer",
            "source": snapshot,
            "options": {"paired_vocoder": "harmony-vocoder"},
        },
        {"id": "harmony-vocoder", "family": "harmonyspeech-vocoder", "source": snapshot},
    ]
    config = {"services": {"tts": {"port": 0, "models": models}}, "drain_grace_s": 5}
    running = start_server("tts", config, tmp_path_factory.mktemp("harmony-parity"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def conversion(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    snapshot = str(REFERENCE.file("snapshot"))
    models = [{"id": "harmony-encoder", "family": "harmonyspeech-v1-encoder", "source": snapshot}]
    running = start_server(
        "conversion", conversion_config(models), tmp_path_factory.mktemp("harmony-enc")
    )
    yield running
    running.stop()


def options(case: dict) -> tts_pb2.SynthesisOptions:
    speaker = audio_pb2.SpeakerEmbedding(
        model_family="harmonyspeech-v1",
        model="harmony-encoder",
        values=REFERENCE.array("speaker").tolist(),
    )
    fields = {k: case[k] for k in ("speed", "pitch", "energy") if case.get(k) is not None}
    return tts_pb2.SynthesisOptions(speaker_embedding=speaker, **fields)


def synthesize(stub, case: dict, fmt: audio_pb2.AudioFormat, text: str | None = None):
    request = tts_pb2.SynthesizeRequest(
        model="harmony-synth", text=case["text"] if text is None else text, options=options(case)
    )
    request.output_format.CopyFrom(fmt)
    return stub.Synthesize(request, timeout=120)


def f32(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<f4")


def wav16(data: bytes) -> np.ndarray:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    assert rate == 16000
    return samples


def assert_within_one_step(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: {actual.shape} != {expected.shape}"
    differ = np.abs(actual.astype(np.int32) - expected.astype(np.int32))
    worst = int(differ.max())
    print(f"{what} WAV: {np.count_nonzero(differ)} of {differ.size} samples one step off")
    assert worst <= 1, f"{what}: 16-bit samples differ by up to {worst}"


@pytest.mark.parametrize("case", SYNTHESES, ids=names(SYNTHESES))
def test_symbol_ids_are_the_references(case):
    # The ids never leave the server: the served front end's module, on the whole text.
    assert harmony_text.token_ids(case["text"]) == REFERENCE.document(case["ids"])


@pytest.mark.parametrize("case", SYNTHESES, ids=names(SYNTHESES))
def test_spectrogram_is_the_references_whole_text_mel(tts: RunningServer, case):
    expected = REFERENCE.array(case["mel"])
    with tts.channel() as channel:
        response = tts_pb2_grpc.TextToSpeechStub(channel).SynthesizeSpectrogram(
            tts_pb2.SynthesizeSpectrogramRequest(
                model="harmony-synth", text=case["text"], options=options(case)
            ),
            timeout=120,
        )
    mel = f32(response.mel.data).reshape(list(response.mel.shape))
    assert mel.shape == expected.shape  # frames exactly: one sequence, the same durations
    print(f"{case['name']} mel: {assert_close(mel, expected, case['name']):.3g} of the peak")


@pytest.mark.parametrize("case", SYNTHESES, ids=names(SYNTHESES))
def test_synthesize_is_the_references_chain(tts: RunningServer, case):
    with tts.channel() as channel:
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        floats = synthesize(stub, case, F32)
        wav = synthesize(stub, case, WAV)
    audio = f32(floats.audio.data)
    assert len(audio) == case["samples"]  # frames × 200 and 0.15 s of silence
    assert floats.summary.num_spans == 1
    assert np.abs(audio).max() == pytest.approx(0.97, abs=1e-6)
    if case["audio"]:
        error = assert_close(audio, REFERENCE.array(case["audio"]), f"{case['name']} audio")
        print(f"{case['name']} audio: {error:.3g} of the peak")
    if case["wav"]:
        assert_within_one_step(wav16(wav.audio.data), REFERENCE.array(case["wav"]), case["name"])


def test_vocode_is_the_references_normalised_audio(tts: RunningServer):
    mel = REFERENCE.array(VOCODE["mel"])
    tensor = audio_pb2.Tensor(
        shape=list(mel.shape),
        dtype=audio_pb2.DATA_TYPE_FLOAT32,
        data=mel.astype("<f4").tobytes(),
        kind="harmonyspeech-v1-mel",
    )
    with tts.channel() as channel:
        stub = tts_pb2_grpc.VocoderStub(channel)
        floats = stub.Vocode(
            tts_pb2.VocodeRequest(model="harmony-vocoder", mel=tensor, output_format=F32),
            timeout=60,
        )
        wav = stub.Vocode(
            tts_pb2.VocodeRequest(model="harmony-vocoder", mel=tensor, output_format=WAV),
            timeout=60,
        )
    error = assert_close(f32(floats.audio.data), REFERENCE.array(VOCODE["audio"]), "vocode")
    print(f"vocode audio: {error:.3g} of the peak")
    assert_within_one_step(wav16(wav.audio.data), REFERENCE.array(VOCODE["wav"]), "vocode")


def test_streaming_vocode_is_the_unnormalised_vocode(tts: RunningServer):
    """StreamingVocode sends samples before the peak is known: the reference's audio
    up to the one scale factor the whole-spectrogram normalisation applies."""
    mel = REFERENCE.array(VOCODE["mel"])
    expected = REFERENCE.array(VOCODE["audio"])

    def requests():
        yield tts_pb2.StreamingVocodeRequest(
            config=tts_pb2.StreamingVocodeConfig(model="harmony-vocoder", output_format=F32)
        )
        for start in range(0, mel.shape[1], 6):
            part = np.ascontiguousarray(mel[:, start : start + 6], dtype="<f4")
            yield tts_pb2.StreamingVocodeRequest(
                mel=audio_pb2.Tensor(
                    shape=list(part.shape),
                    dtype=audio_pb2.DATA_TYPE_FLOAT32,
                    data=part.tobytes(),
                    kind="harmonyspeech-v1-mel",
                )
            )

    with tts.channel() as channel:
        streamed = list(tts_pb2_grpc.VocoderStub(channel).StreamingVocode(requests(), timeout=60))
    audio = np.concatenate([f32(r.audio.data) for r in streamed]).astype(np.float64)
    assert len(audio) == len(expected)
    peak = np.abs(audio).max()
    print(f"streamed peak {peak:.4f}: Vocode scales it by {0.97 / peak:.4f}")
    assert_close(audio / peak * 0.97, expected, "streamed audio, normalised")


def stream(stub, case: dict) -> tuple[np.ndarray, int]:
    request = tts_pb2.StreamingSynthesizeRequest(
        model="harmony-synth", text=case["text"], options=options(case), output_format=F32
    )
    responses = list(stub.StreamingSynthesize(request, timeout=120))
    audio = streamed_f32(responses)
    return audio, responses[-1].summary.num_spans


@pytest.mark.parametrize("name", ["normal", "numbers"])
def test_streaming_synthesize_goes_sentence_by_sentence(tts: RunningServer, name):
    """The stream's difference from Synthesize, measured: each sentence is its own
    sequence (its own end symbol and durations), peak-normalised on its own and followed
    by 0.15 s of silence, i.e. exactly Synthesize of each sentence in turn."""
    (case,) = [c for c in SYNTHESES if c["name"] == name]
    pieces = split_text(case["text"], 400)
    with tts.channel() as channel:
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        streamed, spans = stream(stub, case)
        sentences = [f32(synthesize(stub, case, F32, p.text).audio.data) for p in pieces]
    assert spans == len(pieces) > 1
    assert_close(streamed, np.concatenate(sentences), f"{name} streamed vs sentence by sentence")
    whole = case["samples"]
    common = min(len(streamed), whole)
    expected = REFERENCE.array(case["audio"]) if case["audio"] else None
    gap = ""
    if expected is not None:
        worst = relative_error(streamed[:common], expected[:common])
        gap = f", worst {worst:.3g} of the peak over the common samples"
    print(f"{name}: {spans} sentences, {len(streamed)} samples vs {whole} unary{gap}")


@pytest.mark.parametrize("case", EMBEDS, ids=names(EMBEDS))
def test_embed_is_the_references(conversion: RunningServer, case):
    samples, rate = soundfile.read(REFERENCE.file(case["clip"]), dtype="int16")
    assert rate == case["rate"]
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    clip = audio_pb2.Audio(format=WAV, data=buffer.getvalue())
    with conversion.channel() as channel:
        response = conversion_pb2_grpc.SpeakerEncoderStub(channel).Embed(
            conversion_pb2.EmbedRequest(model="harmony-encoder", clips=[clip]), timeout=60
        )
    assert response.embedding.model_family == "harmonyspeech-v1"
    values = np.asarray(response.embedding.values, np.float32)
    error = assert_close(values, REFERENCE.array(case["embedding"]), f"{case['name']} embedding")
    print(f"{case['name']} embedding: {error:.3g} of the peak")


@pytest.mark.parametrize("case", [c for c in EMBEDS if c["frames"]], ids=lambda c: c["name"])
def test_encoder_windows_are_the_references(case):
    # The partial mel windows never leave the server: the served preprocessing's module.
    samples, rate = soundfile.read(REFERENCE.file(case["clip"]), dtype="float32")
    params = ge2e.HARMONYSPEECH_PREPROCESSING
    wav = ge2e.preprocess(samples, rate, params)
    front_end = ge2e.MelFrontEnd(40, params.mel_pad_mode)
    windows = ge2e.partial_mels(wav, front_end, params.partial_step)
    error = assert_close(windows, REFERENCE.array(case["frames"]), f"{case['name']} windows")
    print(f"{case['name']} windows: {error:.3g} of the peak")


def test_a_clip_without_speech_is_refused_naming_the_clips(conversion: RunningServer):
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16000, np.int16), 16000, format="WAV", subtype="PCM_16")
    clip = audio_pb2.Audio(format=WAV, data=buffer.getvalue())
    with conversion.channel() as channel, pytest.raises(grpc.RpcError) as error:
        conversion_pb2_grpc.SpeakerEncoderStub(channel).Embed(
            conversion_pb2.EmbedRequest(model="harmony-encoder", clips=[clip]), timeout=60
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "clips" in error.value.details() and "speech" in error.value.details()


def test_the_cases_cover_short_and_long_speech():
    seconds = [c["seconds"] for c in EMBEDS]
    assert min(seconds) < 1.2 < max(seconds)
    assert any(c["rate"] != 16000 for c in EMBEDS) and any(c["windows"] > 1 for c in EMBEDS)
    assert any(len(c["text"]) > 400 for c in SYNTHESES)
