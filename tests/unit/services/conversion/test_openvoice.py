"""OpenVoice converters on tiny random checkpoints in the official V1 and V2 layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from checkpoints import TINY_OPENVOICE, save_openvoice

from speechmesh.nn.vits.flow import sequence_mask
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.conversion.conversion.openvoice.checkpoint import load_converter
from speechmesh.services.conversion.conversion.openvoice.config import ConverterConfig
from speechmesh.services.conversion.conversion.openvoice.spectrogram import linear_spectrogram

HOP = TINY_OPENVOICE["data"]["hop_length"]
GIN = TINY_OPENVOICE["model"]["gin_channels"]


def loaded(tmp_path, version="v2", **kwargs):
    state = save_openvoice(tmp_path, version, **kwargs)
    return load_converter(tmp_path), state


def speechlike(seconds=0.5, seed=0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    noise = np.random.default_rng(seed).standard_normal(len(t)) * 0.05
    return (0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t) + noise).astype(
        np.float32
    )


def convert(converter, samples, source, target, tau=0.0, seed=0):
    model = converter.model
    spec = linear_spectrogram(samples, model.config).unsqueeze(0)
    noise = torch.randn(
        (1, model.config.inter_channels, spec.size(2)),
        generator=torch.Generator().manual_seed(seed),
    )
    with torch.inference_mode():
        return model.convert(
            spec,
            torch.tensor([spec.size(2)]),
            torch.as_tensor(source).reshape(1, -1, 1),
            torch.as_tensor(target).reshape(1, -1, 1),
            tau,
            noise,
        )[0, 0].numpy()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_both_layouts_load_strictly_with_weight_norm_folded(tmp_path, version):
    converter, state = loaded(tmp_path, version)
    assert converter.model.config.zero_g == (version == "v2")
    v = state["dec.ups.0.weight_v"]  # ConvTranspose1d: the norm runs over dim 0 too
    g = state["dec.ups.0.weight_g"]
    expected = g * v / v.square().sum(dim=(1, 2), keepdim=True).sqrt()
    assert torch.allclose(converter.model.dec.ups[0].weight, expected)
    assert converter.model.dec.conv_post.bias is None
    names = {"v1": {"EN/en_default"}, "v2": {"en-default", "es"}}[version]
    assert set(converter.base_speakers) == names
    assert all(e.shape == (GIN,) for e in converter.base_speakers.values())


def test_a_missing_or_unexpected_key_is_named(tmp_path):
    with pytest.raises(FailedPrecondition, match=r"enc_q\.proj\.bias"):
        loaded(tmp_path / "a", drop="enc_q.proj.bias")
    with pytest.raises(FailedPrecondition, match=r"enc_p\.emb\.weight"):
        loaded(tmp_path / "b", extra={"enc_p.emb.weight": torch.zeros(3, 8)})
    with pytest.raises(FailedPrecondition, match="without their pair"):
        loaded(tmp_path / "c", drop="ref_enc.convs.0.weight_v")


def test_config_mistakes_are_named(tmp_path):
    save_openvoice(tmp_path)
    config = tmp_path / "converter" / "config.json"
    document = json.loads(config.read_text())
    document["model"]["upsample_rates"] = [4, 2]
    config.write_text(json.dumps(document))
    with pytest.raises(FailedPrecondition, match="hop_length"):
        load_converter(tmp_path)
    del document["model"]["gin_channels"]
    config.write_text(json.dumps(document))
    with pytest.raises(FailedPrecondition, match=r"model\.gin_channels is missing"):
        load_converter(tmp_path)


def test_spectrogram_frames_and_bins():
    config = TINY_OPENVOICE["data"]
    samples = speechlike()
    spec = linear_spectrogram(samples, ConverterConfig.from_json(TINY_OPENVOICE, "tiny"))
    assert spec.shape == (config["filter_length"] // 2 + 1, len(samples) // HOP)
    assert float(spec.min()) >= 1e-3  # sqrt(|X|² + 1e-6)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_conversion_shapes_and_determinism(tmp_path, version):
    converter, _ = loaded(tmp_path, version)
    samples = speechlike()
    a, b = np.full(GIN, 0.5, np.float32), np.linspace(-1, 1, GIN).astype(np.float32)
    out = convert(converter, samples, a, b)
    assert out.shape == (len(samples) // HOP * HOP,)
    assert np.abs(out).max() <= 1.0  # tanh
    # tau = 0 ignores the noise draw; tau > 0 repeats with the seed and varies without.
    np.testing.assert_array_equal(out, convert(converter, samples, a, b, seed=5))
    noisy = convert(converter, samples, a, b, tau=0.5, seed=1)
    np.testing.assert_array_equal(noisy, convert(converter, samples, a, b, tau=0.5, seed=1))
    assert not np.allclose(noisy, convert(converter, samples, a, b, tau=0.5, seed=2))
    # The target voice changes the output.
    assert not np.allclose(out, convert(converter, samples, a, a))


def test_the_flow_is_invertible(tmp_path):
    converter, _ = loaded(tmp_path)
    flow = converter.model.flow
    z = torch.randn(1, TINY_OPENVOICE["model"]["inter_channels"], 40)
    mask = sequence_mask(torch.tensor([30]), 40)
    g = torch.randn(1, GIN, 1)
    with torch.inference_mode():
        back = flow(flow(z * mask, mask, g), mask, g, reverse=True)
    assert torch.allclose(back, z * mask, atol=1e-5)


def test_v2_conditions_only_the_flow(tmp_path):
    """With zero_g, source == target is the identity on the latent whatever the voice,
    so the output cannot depend on which voice it is; V1's decoder hears the voice."""
    samples = speechlike()
    one, two = np.full(GIN, 0.5, np.float32), np.linspace(-1, 1, GIN).astype(np.float32)
    v2, _ = loaded(tmp_path / "v2", "v2")
    np.testing.assert_allclose(
        convert(v2, samples, one, one), convert(v2, samples, two, two), atol=1e-5
    )
    v1, _ = loaded(tmp_path / "v1", "v1")
    assert not np.allclose(convert(v1, samples, one, one), convert(v1, samples, two, two))


def test_reference_embedding_shape(tmp_path):
    converter, _ = loaded(tmp_path)
    spec = linear_spectrogram(speechlike(1.0), converter.model.config)
    with torch.inference_mode():
        embedding = converter.model.ref_enc(spec.T.unsqueeze(0))
    assert embedding.shape == (1, GIN)
