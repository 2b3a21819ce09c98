"""Chatterbox (standard, turbo, multilingual) served by the TTS service: tiny random
checkpoints in the official layouts (tests/chatterbox_checkpoint.py), a real server,
real gRPC. Speech tokens are capped (options.max_new_tokens) to keep the audio short;
the `-long` models (the same checkpoints, a higher cap) serve the streams within a
sentence (stream_chunk_tokens)."""

from __future__ import annotations

import io
import wave
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from chatterbox_checkpoint import clip, write
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support import RunningServer, start_server, wait_for_serving, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.services.tts.chatterbox import tokenizers
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

# Building and loading the tiny checkpoints (several models, one server) takes minutes on
# a busy machine: the first test, which sets them up, gets more than the default 300 s.
pytestmark = [pytest.mark.xdist_group("chatterbox-tts"), pytest.mark.timeout(900)]
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
FAMILIES = ("chatterbox", "chatterbox-turbo", "chatterbox-multilingual")
TOKENS = 12
LONG = 48
FOLDERS: dict[str, object] = {}


def server_folder(server: RunningServer):  # type: ignore[no-untyped-def]
    """The multilingual model's checkpoint folder of a running test server."""
    return FOLDERS[server.address]


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def reference(seconds: float = 6.0, seed: int = 21) -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV),
        data=wav_bytes(clip(seed, seconds, 22050), 22050),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    root = tmp_path_factory.mktemp("chatterbox")
    models = []
    for family in FAMILIES:
        options = write(family, root / family)
        models.append(
            {
                "id": family,
                "family": family,
                "source": str(root / family),
                "threads": 1,
                "max_batch_size": 4,
                "max_batch_wait_ms": 200,
                "options": {**options, "max_new_tokens": TOKENS},
            }
        )
        models.append(
            {
                **models[-1],
                "id": f"{family}-long",
                "options": {**options, "max_new_tokens": LONG},
            }
        )
    config = {"services": {"tts": {"port": 0, "models": models}}, "drain_grace_s": 5}
    running = start_server("tts", config, tmp_path_factory.mktemp("cb-srv"), wait_serving=False)
    wait_for_serving(running, timeout_s=600)
    FOLDERS[running.address] = root / "chatterbox-multilingual"
    yield running
    running.stop()


def synthesize(server: RunningServer, model: str, text: str = "Hello there.", **options):
    request = tts_pb2.SynthesizeRequest(
        model=model, text=text, options=tts_pb2.SynthesisOptions(**options), output_format=F32
    )
    with server.channel() as channel:
        return tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=300)


def samples(reply) -> np.ndarray:
    return np.frombuffer(reply.audio.data, "<f4")


def refused(server: RunningServer, model: str, **options) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as raised:
        synthesize(server, model, **options)
    status = rpc_status.from_call(raised.value)
    field = ""
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                field = bad.field_violations[0].field
    return raised.value.code(), field, raised.value.details()


def test_list_models_reports_the_three_variants(server: RunningServer):
    with server.channel() as channel:
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest())
    found = {m.id: m for m in listed.models}
    assert {m.state for m in found.values()} == {models_pb2.MODEL_STATE_READY}
    assert found["chatterbox"].native_sample_rate_hz == 24000
    assert list(found["chatterbox"].languages) == ["en"]
    assert {"en", "fr", "ko", "zh"} <= set(found["chatterbox-multilingual"].languages)
    assert [v.id for v in found["chatterbox-turbo"].voices] == ["default"]


@pytest.mark.parametrize("model", FAMILIES)
def test_a_seed_repeats_the_audio_and_another_changes_it(server: RunningServer, model: str):
    first = samples(synthesize(server, model, seed=3))
    assert len(first) > 0 and np.isfinite(first).all()
    assert np.array_equal(first, samples(synthesize(server, model, seed=3)))
    assert not np.array_equal(first, samples(synthesize(server, model, seed=4)))


@pytest.mark.parametrize("model", FAMILIES)
def test_a_reference_clip_is_the_voice(server: RunningServer, model: str):
    builtin = samples(synthesize(server, model, seed=3))
    cloned = samples(synthesize(server, model, seed=3, reference_audio=reference()))
    assert not np.array_equal(builtin, cloned)
    again = samples(synthesize(server, model, seed=3, reference_audio=reference()))
    assert np.array_equal(cloned, again)


def test_streaming_goes_sentence_by_sentence(server: RunningServer):
    request = tts_pb2.StreamingSynthesizeRequest(
        model="chatterbox",
        text="Hello there. How are you today?",
        options=tts_pb2.SynthesisOptions(seed=2),
        output_format=F32,
    )
    with server.channel() as channel:
        responses = list(
            tts_pb2_grpc.TextToSpeechStub(channel).StreamingSynthesize(request, timeout=300)
        )
    chunks = [r.chunk for r in responses if r.HasField("chunk")]
    spans = [c.span.index for c in chunks if c.end_of_span]
    assert spans == [0, 1]
    assert all(c.audio.num_samples > 0 for c in chunks)


def test_two_voices_in_one_batch_sound_as_each_alone(server: RunningServer):
    asks = [
        dict(text="Hello there.", seed=5, reference_audio=reference()),
        dict(text="How are you?", seed=6),
        dict(text="Fine, thanks.", seed=7, reference_audio=reference(seed=30)),
    ]
    alone = [samples(synthesize(server, "chatterbox", **ask)) for ask in asks]
    with ThreadPoolExecutor(len(asks)) as pool:
        together = list(
            pool.map(lambda ask: samples(synthesize(server, "chatterbox", **ask)), asks)
        )
    for a, b in zip(alone, together, strict=True):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


@pytest.mark.parametrize(
    ("model", "options", "field", "says"),
    [
        ("chatterbox-turbo", {"cfg_weight": 0.3}, "chatterbox.cfg_weight", "not an option"),
        ("chatterbox-turbo", {"min_p": 0.1}, "chatterbox.min_p", "not an option"),
        ("chatterbox", {"top_k": 5}, "chatterbox.top_k", "not an option"),
        ("chatterbox", {"temperature": 0.0}, "chatterbox.temperature", "must be"),
        ("chatterbox", {"cfg_weight": 1.5}, "chatterbox.cfg_weight", "must be"),
        ("chatterbox-multilingual", {"repetition_penalty": 0.5},
         "chatterbox.repetition_penalty", "must be"),
        ("chatterbox", {"top_p": 1.2}, "chatterbox.top_p", "must be"),
    ],
)  # fmt: skip
def test_options_are_checked_per_variant(server, model, options, field, says):
    code, violated, details = refused(
        server, model, chatterbox=tts_pb2.ChatterboxOptions(**options)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violated.endswith(field) and says in details


def test_bad_requests_are_refused_with_the_reason(server: RunningServer):
    code, field, details = refused(server, "chatterbox", speed=2.0)
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "options.speed")
    code, _, details = refused(server, "chatterbox-multilingual", language="xx")
    assert code == grpc.StatusCode.NOT_FOUND
    assert "language 'xx' is not served" in details and "speaks ar, da, de" in details
    code, field, details = refused(server, "chatterbox-turbo", reference_audio=reference(3.0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "longer than 5 s" in details
    code, _, _ = refused(server, "chatterbox", voice="nobody")
    assert code == grpc.StatusCode.NOT_FOUND
    french = synthesize(server, "chatterbox-multilingual", "Bonjour à tous.", language="fr", seed=1)
    assert len(samples(french)) > 0


@pytest.mark.parametrize("language", sorted(tokenizers.LANGUAGE_PACKAGES))
def test_a_language_whose_preparation_is_missing_is_refused(server: RunningServer, language):
    """The tiny folder has no Cangjie table, so Chinese is always refused; the others
    are refused where their package is not installed, and spoken where it is."""
    reason = tokenizers.MTLTokenizer.unavailable(language, server_folder(server))
    if reason is None:
        text = {"ja": "こんにちは。", "he": "שלום.", "ru": "Привет."}[language]
        reply = synthesize(server, "chatterbox-multilingual", text, language=language, seed=1)
        assert len(samples(reply)) > 0
        return
    code, field, details = refused(server, "chatterbox-multilingual", language=language)
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "options.language")
    assert reason in details


def test_missing_files_fail_the_model_naming_them(tmp_path):
    folder = tmp_path / "chatterbox"
    options = write("chatterbox", folder)
    (folder / "t3_cfg.safetensors").unlink()
    (folder / "tokenizer.json").unlink()
    models = [{"id": "cb", "family": "chatterbox", "source": str(folder), "options": options}]
    config = {"services": {"tts": {"port": 0, "models": models}}, "drain_grace_s": 5}
    running = start_server("tts", config, tmp_path, wait_serving=False)
    try:
        with running.channel() as channel:
            stub = models_pb2_grpc.ModelsStub(channel)

            def failed():
                (model,) = stub.ListModels(models_pb2.ListModelsRequest()).models
                return model.state == models_pb2.MODEL_STATE_FAILED

            wait_until(failed, timeout_s=120)
            with pytest.raises(grpc.RpcError) as raised:
                tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
                    tts_pb2.SynthesizeRequest(model="cb", text="Hi."), timeout=30
                )
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "t3_cfg.safetensors" in raised.value.details()
        assert "tokenizer.json" in raised.value.details()
    finally:
        running.stop()


def stream(server: RunningServer, model: str, text: str = "Hello there.", **options):
    request = tts_pb2.StreamingSynthesizeRequest(
        model=model, text=text, options=tts_pb2.SynthesisOptions(**options), output_format=F32
    )
    with server.channel() as channel:
        return list(
            tts_pb2_grpc.TextToSpeechStub(channel).StreamingSynthesize(request, timeout=300)
        )


def streamed_audio(responses) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.concatenate(
        [np.frombuffer(r.chunk.audio.data, "<f4") for r in responses if r.HasField("chunk")]
    )


def chunked(chunk: int, **options) -> dict:  # type: ignore[no-untyped-def]
    return {"chatterbox": tts_pb2.ChatterboxOptions(stream_chunk_tokens=chunk), **options}


@pytest.mark.parametrize("model", FAMILIES)
def test_a_chunked_stream_sends_audio_before_the_sentence_ends(server: RunningServer, model):
    long = f"{model}-long"
    responses = stream(server, long, seed=3, **chunked(6))
    chunks = [r.chunk for r in responses if r.HasField("chunk")]
    summary = responses[-1].summary
    # One sentence, in more chunks than sentences; only the last one ends the span.
    assert {c.span.index for c in chunks} == {0}
    assert len(chunks) >= 3
    assert [c.end_of_span for c in chunks] == [False] * (len(chunks) - 1) + [True]
    offsets = np.cumsum([0] + [c.audio.num_samples for c in chunks])
    assert [c.audio.sample_offset for c in chunks] == list(offsets[:-1])
    assert all(c.audio.num_samples > 0 for c in chunks)
    assert summary.total_samples == offsets[-1] == len(streamed_audio(responses))
    assert summary.num_spans == 1
    # T3 draws as it does without chunks, so the sentence is as long as unchunked.
    whole = streamed_audio(stream(server, long, seed=3))
    assert len(whole) == offsets[-1]
    assert np.isfinite(streamed_audio(responses)).all()


@pytest.mark.parametrize("model", FAMILIES)
def test_a_seed_repeats_a_chunked_stream(server: RunningServer, model):
    long = f"{model}-long"
    first = streamed_audio(stream(server, long, seed=5, **chunked(10)))
    assert np.array_equal(first, streamed_audio(stream(server, long, seed=5, **chunked(10))))
    assert not np.array_equal(first, streamed_audio(stream(server, long, seed=6, **chunked(10))))


def test_chunked_and_sentence_streams_batched_get_what_they_get_alone(server: RunningServer):
    asks = [
        dict(text="Hello there.", seed=5, reference_audio=reference(), **chunked(8)),
        dict(text="How are you?", seed=6),
        dict(text="Fine, thanks.", seed=7, **chunked(12)),
    ]
    model = "chatterbox-long"
    alone = [streamed_audio(stream(server, model, **ask)) for ask in asks]
    with ThreadPoolExecutor(len(asks)) as pool:
        together = list(pool.map(lambda ask: streamed_audio(stream(server, model, **ask)), asks))
    for a, b in zip(alone, together, strict=True):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


def stream_refused(server: RunningServer, model: str, **options) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        stream(server, model, **options)
    return raised.value.code(), raised.value.details()


@pytest.mark.parametrize(
    ("model", "chunk", "says"),
    [
        ("chatterbox-long", 3, "must be 0 (by sentence) or 4 to 48"),
        ("chatterbox-long", 49, "must be 0 (by sentence) or 4 to 48"),
        ("chatterbox-turbo", 13, "must be 0 (by sentence) or 4 to 12"),
        ("chatterbox-multilingual-long", 1, "Chatterbox multilingual"),
    ],
)
def test_bad_chunk_sizes_are_refused_per_variant(server: RunningServer, model, chunk, says):
    code, details = stream_refused(server, model, **chunked(chunk))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "options.chatterbox.stream_chunk_tokens" in details and says in details


def test_synthesize_refuses_chunks_and_takes_zero(server: RunningServer):
    code, field, details = refused(server, "chatterbox-long", **chunked(8))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field == "options.chatterbox.stream_chunk_tokens" and "StreamingSynthesize" in details
    plain = samples(synthesize(server, "chatterbox", seed=3))
    assert np.array_equal(plain, samples(synthesize(server, "chatterbox", seed=3, **chunked(0))))


def test_bidi_streams_within_a_sentence_and_at_another_rate(server: RunningServer):
    """Text arriving in pieces, a 16 kHz output: the parts of a sentence go through one
    streaming resampler, so the stream still counts every sample once."""
    out = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=16000)
    options = tts_pb2.SynthesisOptions(seed=4, **chunked(6))

    def requests():  # type: ignore[no-untyped-def]
        config = tts_pb2.BidiSynthesizeConfig(
            model="chatterbox-long", options=options, output_format=out
        )
        yield tts_pb2.BidiSynthesizeRequest(config=config)
        yield tts_pb2.BidiSynthesizeRequest(text="Hello ")
        yield tts_pb2.BidiSynthesizeRequest(text="there.")

    with server.channel() as channel:
        responses = list(
            tts_pb2_grpc.TextToSpeechStub(channel).BidiSynthesize(requests(), timeout=300)
        )
    chunks = [r.chunk for r in responses if r.HasField("chunk")]
    assert len(chunks) >= 3 and chunks[-1].end_of_span
    assert {c.format.sample_rate_hz for c in chunks} == {16000}
    offsets = np.cumsum([0] + [c.audio.num_samples for c in chunks])
    assert [c.audio.sample_offset for c in chunks] == list(offsets[:-1])
    data = b"".join(c.audio.data for c in chunks)
    assert len(data) // 4 == offsets[-1] == responses[-1].summary.total_samples
