"""OpenVoice V1/V2 served over gRPC against the reference ToneColorConverter.

scripts/parity/openvoice.py ran myshell-ai/OpenVoice's extract_se and convert on tiny
random converters; here the same checkpoints (rebuilt from their seed, digest checked)
are served by a real conversion server and every RPC of the family is compared:
Embed, Convert (short and long sources, tau 0 and tau > 0 with the reference's seed,
each way of giving the source and target voices) and StreamingConvert (whose windows
are each the reference's conversion of that window, crossfaded).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support import conversion_config, start_server, stream_convert

from parity.openvoice_weights import digest, random_state, save_checkpoint
from parity.support import ReferenceRun, assert_close, relative_error
from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.services.conversion.conversion import run as conversion_run
from speechmesh.services.conversion.conversion.openvoice.engine import OpenVoiceV1

pytestmark = pytest.mark.xdist_group("parity-openvoice")
F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
VERSIONS = ("v1", "v2")


def reference() -> ReferenceRun:
    return ReferenceRun("openvoice")


def cases(kind: str, noisy: bool = False) -> list:
    """The fixture's cases of one kind (noisy: only those at tau > 0) as parameters."""
    try:
        found = [c for c in reference().cases if c["kind"] == kind and (c.get("tau") or not noisy)]
    except FileNotFoundError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no openvoice fixtures"))]
    return [pytest.param(c, id=c["name"]) for c in found]


def model_id(version: str) -> str:
    return f"openvoice-{version}-parity"


def rate(version: str) -> int:
    return int(reference().document(f"{version}/config")["data"]["sampling_rate"])


def hop(version: str) -> int:
    return int(reference().document(f"{version}/config")["data"]["hop_length"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run = reference()
    root = tmp_path_factory.mktemp("openvoice-parity")
    models = []
    for version in VERSIONS:
        layout = run.manifest["layout"][version]
        snapshot = root / version
        weights = run.document(f"{version}/weights")
        state = random_state([(key, shape) for key, shape in weights["keys"]], weights["seed"])
        assert digest(state) == weights["sha256"], "the rebuilt weights are not the reference's"
        converter = snapshot / layout["converter"]
        save_checkpoint(state, converter / "checkpoint.pth")
        (converter / "config.json").write_text(json.dumps(run.document(f"{version}/config")))
        base = snapshot / layout["base_speaker"]
        base.parent.mkdir(parents=True, exist_ok=True)
        torch.save(torch.from_numpy(run.array(f"{version}/base_speaker")), base)
        models.append(
            {
                "id": model_id(version),
                "family": f"openvoice-{version}",
                "source": str(snapshot),
                "threads": 1,
            }
        )
    running = start_server("conversion", conversion_config(models), root)
    yield running
    running.stop()


def pcm(samples: np.ndarray, version: str) -> audio_pb2.Audio:
    """Float PCM at the model's rate: the server decodes exactly these samples."""
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=rate(version)),
        data=np.asarray(samples, "<f4").tobytes(),
    )


def embedding(version: str, name: str) -> audio_pb2.SpeakerEmbedding:
    values = reference().array(f"{version}/embed_{name}").reshape(-1)
    return audio_pb2.SpeakerEmbedding(
        model_family=f"openvoice-{version}", values=values.astype(np.float32).tolist()
    )


def voices(fields: dict, case: dict) -> dict:
    """The request's source and target fields for the case's way of giving each voice."""
    run, version = reference(), case["version"]
    if case["source"] == "voice":
        fields["source_voice"] = run.manifest["layout"][version]["voice"]
    elif case["source"] == "embedding_long":
        fields["source_embedding"] = embedding(version, "long")
    else:  # the server embeds the source itself (a stream: from its first window)
        assert case["source"] in ("audio", "first_window")
    if case["target"] == "audio":
        fields["target_audio"] = pcm(run.array("clips/target_a"), version)
    else:
        fields["target_embedding"] = embedding(version, case["target"].removeprefix("embedding_"))
    return fields


@pytest.mark.parametrize("case", cases("embed"))
def test_embed_matches_extract_se(server, case):
    """Embed: the mean of the reference encoder over each clip's whole spectrogram."""
    run, version = reference(), case["version"]
    clips = [pcm(run.array(f"clips/{name}"), version) for name in case["clips"]]
    with server.channel() as channel:
        response = conversion_pb2_grpc.SpeakerEncoderStub(channel).Embed(
            conversion_pb2.EmbedRequest(model=model_id(version), clips=clips), timeout=60
        )
    assert response.embedding.model_family == f"openvoice-{version}"
    expected = run.array(case["embedding"]).reshape(-1)
    error = assert_close(np.array(response.embedding.values), expected, case["name"])
    print(f"{case['name']}: worst error {error:.2g} of the peak")


@pytest.mark.parametrize("case", cases("convert"))
def test_convert_matches_the_reference(server, case):
    """Convert: the reference's output over its len // hop frames, then silence up to the
    source's length; at tau > 0 the request's seed draws the reference's noise."""
    run, version = reference(), case["version"]
    source = run.array(f"clips/{case['clip']}")
    fields = voices(
        {
            "model": model_id(version),
            "source": pcm(source, version),
            "options": conversion_pb2.ConversionOptions(tau=case["tau"], seed=case["seed"]),
            "output_format": audio_pb2.AudioFormat(encoding=F32),
        },
        case,
    )
    with server.channel() as channel:
        response = conversion_pb2_grpc.VoiceConversionStub(channel).Convert(
            conversion_pb2.ConvertRequest(**fields), timeout=120
        )
    out = np.frombuffer(response.audio.data, "<f4")
    expected = run.array(case["output"])
    assert response.audio.format.sample_rate_hz == rate(version)
    assert response.total_samples == len(out) == len(source)
    assert len(expected) == len(source) // hop(version) * hop(version)
    error = assert_close(out[: len(expected)], expected, case["name"])
    assert not out[len(expected) :].any(), "the samples past the last whole frame are silence"
    print(f"{case['name']}: worst error {error:.2g} of the peak")


@pytest.mark.parametrize("case", cases("convert", noisy=True))
def test_the_seed_draws_the_reference_noise(case):
    """The engine's noise source for a seed gives the draw the reference made after
    torch.manual_seed(seed) (the posterior's noise, one standard normal per value)."""
    noise = reference().array(case["noise"])
    engine = OpenVoiceV1.__new__(OpenVoiceV1)  # noise_source needs no loaded model
    drawn = torch.randn(noise.shape, generator=engine.noise_source(case["seed"]))
    np.testing.assert_array_equal(drawn.numpy(), noise)


def stream(server, samples: np.ndarray, config: conversion_pb2.StreamingConvertConfig):
    # Float32 chunks that split no sample.
    return stream_convert(server, np.asarray(samples, "<f4").tobytes(), config, 4 * 777)


def joined(windows: list[tuple[int, int]], outputs: list[np.ndarray], overlap: int) -> np.ndarray:
    """The reference's window conversions as the stream joins them: each padded with
    silence to its window, the overlaps crossfaded linearly."""
    pieces, held = [], None
    for index, ((start, end), converted) in enumerate(zip(windows, outputs, strict=True)):
        out = np.zeros(end - start, np.float32)
        out[: len(converted)] = converted
        if held is not None:
            ramp = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
            out[:overlap] = held * (1 - ramp) + out[:overlap] * ramp
        if index == len(windows) - 1:
            pieces.append(out)
        else:
            held = out[-overlap:].copy()
            pieces.append(out[:-overlap])
    return np.concatenate(pieces)


@pytest.mark.parametrize("case", cases("stream"))
def test_streaming_convert_joins_the_reference_windows(server, case):
    run, version = reference(), case["version"]
    source = run.array(f"clips/{case['clip']}")
    model_rate, model_hop = rate(version), hop(version)
    window = int(conversion_run.WINDOW_S * model_rate) // model_hop * model_hop
    overlap = int(conversion_run.OVERLAP_S * model_rate) // model_hop * model_hop
    windows = [tuple(w) for w in case["windows"]]
    starts = list(range(0, len(source) - window + 1, window - overlap))
    assert windows[:-1] == [(s, s + window) for s in starts], "regenerate: the windows changed"
    assert windows[-1] == (starts[-1] + window - overlap, len(source))
    config = conversion_pb2.StreamingConvertConfig(
        **voices(
            {
                "model": model_id(version),
                "format": audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=model_rate),
                "options": conversion_pb2.ConversionOptions(tau=case["tau"], seed=case["seed"]),
                "output_format": audio_pb2.AudioFormat(encoding=F32),
            },
            case,
        )
    )
    *chunks, last = stream(server, source, config)
    assert last.end_of_stream and last.processed_samples == len(source)
    offsets = [r.audio.sample_offset for r in chunks]
    sizes = [r.audio.num_samples for r in chunks]
    assert offsets == [sum(sizes[:i]) for i in range(len(sizes))]
    streamed = np.concatenate([np.frombuffer(r.audio.data, "<f4") for r in chunks])
    expected = joined(windows, [run.array(o) for o in case["outputs"]], overlap)
    error = assert_close(streamed, expected, case["name"])
    print(f"{case['name']}: worst error {error:.2g} of the peak")
    if case["unary"]:
        # Against the whole-source conversion: equal far from the joins (the first
        # window's first half), different near them, where each window sees its edge.
        whole = run.array(case["unary"])
        assert_close(streamed[: window // 2], whole[: window // 2], "far from the joins")
        apart = relative_error(streamed[: len(whole)], whole)
        print(f"{case['name']}: streamed vs unary worst difference {apart:.3g} of the peak")
        assert apart > 1e-3  # the joins do change the audio: the comparison above is real


@pytest.mark.parametrize("samples", [1, 10])
def test_a_source_too_short_for_the_reference_is_padded_not_refused(server, samples):
    """The reference cannot take a clip shorter than its reflect padding; the service
    pads it with silence and still answers with exactly the source's length."""
    source = reference().array("clips/short")[:samples]
    request = conversion_pb2.ConvertRequest(
        **voices(
            {
                "model": model_id("v1"),
                "source": pcm(source, "v1"),
                "options": conversion_pb2.ConversionOptions(tau=0.0),
                "output_format": audio_pb2.AudioFormat(encoding=F32),
            },
            {"version": "v1", "source": "voice", "target": "embedding_two"},
        )
    )
    with server.channel() as channel:
        response = conversion_pb2_grpc.VoiceConversionStub(channel).Convert(request, timeout=60)
    out = np.frombuffer(response.audio.data, "<f4")
    assert response.total_samples == len(out) == samples
    assert np.isfinite(out).all()
