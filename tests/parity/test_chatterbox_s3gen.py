"""Chatterbox's speech side (S3 tokenizer, embed_ref, S3Gen standard and turbo, VC)
against the reference package's outputs on the same tiny weights.

scripts/parity/chatterbox_s3gen.py ran chatterbox-tts on weights from
parity/chatterbox_s3gen_weights.py; here they are rebuilt from the seed (digest
checked), loaded by the production loader (strict, weight norm folded) and compared
stage by stage: resampling, tokens (exact), mel, x-vector, every random draw (our
per-request generators, seeded like the reference's global RNG, draw the same
numbers), the encoder, the flow's mel and the audio; the reference's draws are
never injected. Rows of one batch give what each gives alone.
"""

from __future__ import annotations

import hashlib

import grpc
import numpy as np
import pytest
import torch
from support import conversion_config, start_server, stream_convert

from parity.chatterbox_s3gen_weights import save_s3gen, tiny_config
from parity.support import ReferenceRun, assert_close, assert_exact
from parity.voicefixer_clips import clip
from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.nn.chatterbox.s3gen import Reference, Row, load_s3gen
from speechmesh.nn.chatterbox.s3gen.hift import SourceNoise
from speechmesh.nn.spectral import sinc_resample
from speechmesh.runtime.audio import resample, resample_as_librosa

reference = ReferenceRun("chatterbox_s3gen")
CASES = {case["name"]: case for case in reference.cases}
F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
VC_MODEL = "chatterbox-vc-parity"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    recorded = reference.document("weights")
    standard_folder = tmp_path_factory.mktemp("chatterbox-s3gen")
    turbo_folder = tmp_path_factory.mktemp("chatterbox-turbo")
    standard, digest = save_s3gen(standard_folder, recorded["seed"])
    turbo, turbo_digest = save_s3gen(turbo_folder, recorded["turbo_seed"], meanflow=True)
    assert digest == recorded["digest"], "the rebuilt weights are not the fixture's"
    assert turbo_digest == recorded["turbo_digest"], "the rebuilt turbo weights differ"
    return {"synthesis": standard, "turbo": turbo}


@pytest.fixture(scope="module")
def models(weights):
    # The loader reads the sizes from the files' shapes: they are the tiny ones.
    loaded = {name: load_s3gen(path) for name, path in weights.items()}
    assert loaded["synthesis"].config == tiny_config()
    assert loaded["turbo"].config == tiny_config(meanflow=True)
    return loaded


@pytest.fixture(scope="module")
def vc_server(weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("chatterbox-vc-server")
    model = {"id": VC_MODEL, "family": "chatterbox-vc", "source": str(weights["synthesis"].parent)}
    running = start_server("conversion", conversion_config([model]), root)
    yield running
    running.stop()


def f32(samples: np.ndarray, rate: int) -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=rate),
        data=samples.astype("<f4").tobytes(),
    )


def voice() -> np.ndarray:
    case = CASES["reference"]
    return clip(case["clip_seed"], case["samples"], case["rate"])


def fixture_reference(prefix: str = "reference") -> Reference:
    return Reference(
        torch.from_numpy(reference.array("reference/tokens")),
        torch.from_numpy(reference.array("reference/mel")),
        torch.from_numpy(reference.array(f"{prefix}/embedding")),
    )


def test_resampling_to_16k_matches_torchaudio():
    assert_close(sinc_resample(voice(), 24000, 16000), reference.array("reference/wav16"), "wav16")


def test_embed_ref_matches(models):
    ours = models["synthesis"].embed_ref(voice())
    assert_exact(ours.prompt_tokens.numpy(), reference.array("reference/tokens"), "prompt tokens")
    assert_close(ours.prompt_mel.numpy(), reference.array("reference/mel"), "prompt mel")
    assert_close(ours.embedding.numpy(), reference.array("reference/embedding"), "x-vector")
    # The reference's quirk: 45 mel frames, 23 tokens cut to 22.
    assert ours.prompt_mel.shape[0] // 2 == len(ours.prompt_tokens)


def test_tokenizer_matches(models):
    case = CASES["tokens"]
    audio = torch.from_numpy(clip(case["clip_seed"], case["samples"], case["rate"]))
    tokenizer = models["synthesis"].tokenizer
    tokens, lengths = tokenizer.tokenize([audio])
    assert_exact(tokens[0, : int(lengths[0])].numpy(), reference.array("tokens/whole"), "tokens")
    short, _ = tokenizer.tokenize([audio], max_len=case["max_len"])
    assert_exact(short[0].numpy(), reference.array("tokens/max_len"), "max_len tokens")


def draws_match(model, name: str, row: Row) -> None:
    """Our draws from the case's seed are the reference's, call for call."""
    recorded = CASES[name]["draws"]
    noise = model.draw_noise(row)
    frames = noise.shape[1]
    source = SourceNoise.draw(
        model.config.hift.nb_harmonics,
        (frames - len(row.reference.prompt_mel)) * 480,
        row.generator,
        model.device,
    )
    assert [d["call"] for d in recorded][-3:] == ["rand", "randn_like", "randn_like"]
    expected = reference.array(recorded[-4]["file"])[0]
    if model.config.meanflow:  # the new frames' noise was drawn first
        tail = reference.array(recorded[0]["file"])[0]
        expected = np.concatenate([expected[:, : frames - tail.shape[1]], tail], axis=1)
    assert_exact(noise.numpy(), expected, f"{name} CFM noise")
    phase = reference.array(recorded[-3]["file"])[0]
    assert_close(source.phase.numpy(), -np.pi + phase * 2 * np.pi, f"{name} phases")
    digest = hashlib.sha256(source.noise[None].numpy().tobytes()).hexdigest()
    assert digest == recorded[-2]["sha256"], f"{name} HiFT noise differs"


@pytest.mark.parametrize("name", ["synthesis", "turbo"])
def test_generate_matches(models, name):
    case = CASES[name]
    model = models[name]
    tokens = torch.from_numpy(reference.array("synthesis/tokens"))
    voice_ref = model.embed_ref(voice())
    seed = case["torch_seed"]
    draws_match(model, name, Row(tokens, voice_ref, torch.Generator().manual_seed(seed)))
    (out,) = model.generate([Row(tokens, voice_ref, torch.Generator().manual_seed(seed))])
    h, _ = model.flow.encoder(
        model.flow.input_embedding(torch.cat([voice_ref.prompt_tokens, tokens])[None]),
        torch.tensor([len(voice_ref.prompt_tokens) + len(tokens)]),
    )
    assert_close(h[0].detach().numpy(), reference.array(f"{name}/encoder"), f"{name} encoder")
    assert_close(out.mel.numpy(), reference.array(f"{name}/mel"), f"{name} mel")
    assert out.audio.shape[0] == case["audio_samples"]
    error = assert_close(out.audio.numpy(), reference.array(f"{name}/audio"), f"{name} audio")
    print(f"{name}: {case['steps']} steps, audio worst error {error:.2g} of the peak")


def test_voice_conversion_matches(models):
    case = CASES["vc"]
    model = models["synthesis"]
    # librosa.load(sr=16000) of the source file, as the reference reads it.
    source24 = clip(case["source_seed"], case["source_samples"], case["source_rate"])
    source = torch.from_numpy(resample_as_librosa(source24, case["source_rate"], 16000))
    tokens, lengths = model.tokenizer.tokenize([source])
    target24 = clip(case["target_seed"], case["target_samples"], case["target_rate"])
    target = model.embed_ref(resample_as_librosa(target24, case["target_rate"], 24000))
    generator = torch.Generator().manual_seed(case["torch_seed"])
    (out,) = model.generate([Row(tokens[0, : int(lengths[0])], target, generator)])
    assert out.audio.shape[0] == case["audio_samples"]
    assert_close(out.audio.numpy(), reference.array("vc/audio"), "vc audio")


def test_rows_of_a_batch_are_independent(models):
    """Two voices and token lengths in one batch give each row's audio alone."""
    model = models["synthesis"]
    tokens = torch.from_numpy(reference.array("synthesis/tokens"))
    first = fixture_reference()
    other = model.embed_ref(clip(99, 16800, 24000))
    rows = [
        (tokens, first, 5),
        (tokens[:9].flip(0), other, 6),
    ]
    together = model.generate([Row(t, r, torch.Generator().manual_seed(s)) for t, r, s in rows])
    for (t, r, s), joint in zip(rows, together, strict=True):
        (alone,) = model.generate([Row(t, r, torch.Generator().manual_seed(s))])
        assert joint.audio.shape == alone.audio.shape
        assert_close(joint.audio.numpy(), alone.audio.numpy(), "batched row")


def vc_request(case: dict, **target) -> conversion_pb2.ConvertRequest:
    source = clip(case["source_seed"], case["source_samples"], case["source_rate"])
    return conversion_pb2.ConvertRequest(
        model=VC_MODEL,
        source=f32(source, case["source_rate"]),
        options=conversion_pb2.ConversionOptions(seed=case["torch_seed"]),
        output_format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=24000),
        **target,
    )


def test_convert_over_grpc_matches_chatterbox_vc(vc_server):
    """VoiceConversion/Convert on a real server against ChatterboxVC.generate."""
    case = CASES["vc"]
    target = clip(case["target_seed"], case["target_samples"], case["target_rate"])
    request = vc_request(case, target_audio=f32(target, case["target_rate"]))
    with grpc.insecure_channel(vc_server.address) as channel:
        response = conversion_pb2_grpc.VoiceConversionStub(channel).Convert(request, timeout=120)
    out = np.frombuffer(response.audio.data, "<f4")
    # The reply lasts as long as the source; the reference's output is 2·(prompt +
    # source tokens) − len(prompt mel) frames (here one 20 ms frame short of the
    # source, the prompt's mel being odd): the rest of the reply is silence.
    n = case["audio_samples"]
    source = clip(case["source_seed"], case["source_samples"], case["source_rate"])
    assert len(out) == len(resample(source, case["source_rate"], 24000)) and n <= len(out)
    assert_exact(out[n:], np.zeros(len(out) - n, np.float32), "reply past the reference")
    error = assert_close(out[:n], reference.array("vc/audio"), "Convert audio")
    print(f"vc over gRPC: worst error {error:.2g} of the peak")


def test_convert_refuses_a_target_embedding(vc_server):
    case = CASES["vc"]
    embedding = audio_pb2.SpeakerEmbedding(model_family="chatterbox-vc", values=[0.0] * 192)
    request = vc_request(case, target_embedding=embedding)
    with grpc.insecure_channel(vc_server.address) as channel, pytest.raises(grpc.RpcError) as error:
        conversion_pb2_grpc.VoiceConversionStub(channel).Convert(request, timeout=60)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "target_audio" in error.value.details()


def test_streaming_convert_windows_are_converts(vc_server):
    """StreamingConvert: 2 s windows overlapping by 0.24 s (whole 40 ms tokens); the first
    window, up to its overlap, is Convert of those 2 s with the same seed."""
    case = CASES["vc"]
    target = f32(
        clip(case["target_seed"], case["target_samples"], case["target_rate"]), case["target_rate"]
    )
    source = clip(77, 62400, 24000)
    config = conversion_pb2.StreamingConvertConfig(
        model=VC_MODEL,
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=24000),
        target_audio=target,
        options=conversion_pb2.ConversionOptions(seed=11),
        output_format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=24000),
    )
    replies = stream_convert(vc_server, source.astype("<f4").tobytes(), config, 9600)
    streamed = np.frombuffer(b"".join(r.audio.data for r in replies), "<f4")
    assert len(streamed) == len(source)
    window, overlap = 48000, 5760
    request = conversion_pb2.ConvertRequest(
        model=VC_MODEL,
        source=f32(source[:window], 24000),
        target_audio=target,
        options=conversion_pb2.ConversionOptions(seed=11),
        output_format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=24000),
    )
    with grpc.insecure_channel(vc_server.address) as channel:
        whole = conversion_pb2_grpc.VoiceConversionStub(channel).Convert(request, timeout=120)
    first = np.frombuffer(whole.audio.data, "<f4")[: window - overlap]
    assert_close(streamed[: window - overlap], first, "first streamed window")
    assert np.abs(streamed[window:]).max() > 0
