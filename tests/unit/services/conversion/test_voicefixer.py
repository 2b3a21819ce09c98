"""VoiceFixer on tiny random checkpoints in the official file layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checkpoints import TINY_VOCODER, save_voicefixer

from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.conversion.restoration.voicefixer.checkpoint import (
    load_restorer,
    load_vocoder,
)
from speechmesh.services.conversion.restoration.voicefixer.engine import (
    SAMPLE_RATE,
    VoiceFixer,
    remove_high_frequencies,
)

VF = "analysis_module/checkpoints/vf.ckpt"
VOCODER = "synthesis_module/44100/model.ckpt-1490000_trimed.pt"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("voicefixer")
    states = save_voicefixer(root)
    return root, states


@pytest.fixture(scope="module")
def engine(snapshot):
    engine = VoiceFixer(ModelConfig(id="vf", family="voicefixer", source=str(snapshot[0])))
    engine.load()
    return engine


def test_loads_strictly_with_sizes_from_the_tensors(snapshot, engine):
    _root, (restorer_state, vocoder_state) = snapshot
    unet = engine.restorer.generator.unet
    assert unet.encoder_block6.conv_block1.conv1.out_channels == 4
    assert torch.equal(engine.restorer.mel.fb, restorer_state["mel.fb"])
    # ConvTranspose1d weight norm: the norm runs over every dim but the first.
    g, v = vocoder_state["generator.3.layer.weight_g"], vocoder_state["generator.3.layer.weight_v"]
    assert g.shape == (TINY_VOCODER["channels"], 1, 1)
    expected = g * v / v.square().sum(dim=(1, 2), keepdim=True).sqrt()
    assert torch.allclose(engine.vocoder.generator[3].layer.weight, expected)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    save_voicefixer(tmp_path / "a", drop="generator.denoiser.7.gru.weight_hh_l1")
    with pytest.raises(FailedPrecondition, match=r"generator\.denoiser\.7\.gru\.weight_hh_l1"):
        load_restorer(tmp_path / "a" / VF)
    save_voicefixer(tmp_path / "b", extra={"generator.extra.weight": torch.zeros(2)})
    with pytest.raises(FailedPrecondition, match=r"generator\.extra\.weight"):
        load_restorer(tmp_path / "b" / VF)
    save_voicefixer(tmp_path / "c")
    state = torch.load(tmp_path / "c" / VOCODER, weights_only=True)
    del state["generator"]["condnet.2.weight_v"]
    torch.save(state, tmp_path / "c" / VOCODER)
    with pytest.raises(FailedPrecondition, match=r"condnet\.2\.weight_g"):
        load_vocoder(tmp_path / "c" / VOCODER)


def test_missing_files_are_named(tmp_path):
    engine = VoiceFixer(ModelConfig(id="vf", family="voicefixer", source=str(tmp_path)))
    with pytest.raises(FailedPrecondition, match=r"no vf\.ckpt"):
        engine.load()


def test_vocoder_length_and_input_normalisation(engine):
    frames = 7
    mel = torch.rand(1, frames, 128)
    conditions = engine.vocoder.normalise(mel)
    assert conditions.shape == (1, 128, frames + frames % 2 + 4)
    assert float(conditions.max()) <= 4 and float(conditions[..., -1].max()) == -4
    with torch.no_grad():
        audio = engine.vocoder(conditions)
    assert audio.shape == (1, 1, 441 * (frames + frames % 2 + 4))


def test_windows_keep_their_length_and_repeat(engine):
    window = (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)
    out = engine.restore_window(window, 0)
    assert out.shape == window.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out, engine.restore_window(window, 0))


def test_mode_2_leaves_the_stored_statistics_alone(engine):
    before = {k: v.clone() for k, v in engine.restorer.state_dict().items()}
    window = (np.random.default_rng(1).standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)
    trained = engine.restore_window(window, 2)
    assert not np.allclose(trained, engine.restore_window(window, 0))
    after = engine.restorer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not engine.restorer.training


def test_mode_1_removes_the_high_band():
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    low = torch.sin(2 * torch.pi * 300 * t)
    hiss = torch.randn(SAMPLE_RATE, generator=torch.Generator().manual_seed(0)) * 0.01
    out = remove_high_frequencies(low + hiss)
    assert out.shape == low.shape
    # Measured through a Hann window, so the tone's own leakage stays out of the top band.
    window = torch.hann_window(SAMPLE_RATE)
    spectrum = torch.fft.rfft(out * window).abs()
    original = torch.fft.rfft((low + hiss) * window).abs()
    top = slice(int(len(spectrum) * 0.5), None)
    assert float(spectrum[top].sum()) < 0.1 * float(original[top].sum())
