"""The GE2E encoder on tiny random checkpoints in the official HarmonySpeech V1 layout."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from checkpoints import TINY_GE2E as TINY
from checkpoints import save_harmonyspeech_encoder

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.conversion.encoder.ge2e import modules as ge2e


@pytest.mark.parametrize("nested", [True, False])
def test_loads_the_official_layout_strictly(tmp_path, nested):
    reference = save_harmonyspeech_encoder(tmp_path, nested=nested)
    loaded = ge2e.load_harmonyspeech(tmp_path)
    assert loaded.config == TINY
    mels = torch.rand(3, ge2e.PARTIAL_FRAMES, 40)
    with torch.inference_mode():
        assert torch.equal(loaded(mels), reference.eval()(mels))
    # The encoder/ folder itself is accepted too.
    assert ge2e.load_harmonyspeech(tmp_path / "encoder").config == TINY


def test_a_missing_key_names_the_key(tmp_path):
    save_harmonyspeech_encoder(tmp_path, drop="lstm.weight_hh_l1")
    with pytest.raises(FailedPrecondition, match=r"lstm\.weight_hh_l1"):
        ge2e.load_harmonyspeech(tmp_path)


def test_sizes_come_from_the_config(tmp_path):
    save_harmonyspeech_encoder(tmp_path)
    config = tmp_path / "encoder" / "config.json"
    config.write_text(
        json.dumps({"model": {**json.loads(config.read_text())["model"], "model_hidden_size": 9}})
    )
    with pytest.raises(FailedPrecondition, match="shape mismatches"):
        ge2e.load_harmonyspeech(tmp_path)
    config.write_text(json.dumps({"model": {"mel_n_channels": 40}}))
    with pytest.raises(FailedPrecondition, match="model_hidden_size"):
        ge2e.load_harmonyspeech(tmp_path)


def test_missing_files_are_named(tmp_path):
    (tmp_path / "encoder").mkdir()
    with pytest.raises(FailedPrecondition, match=r"config\.json, encoder\.pt"):
        ge2e.load_harmonyspeech(tmp_path)


def test_embeddings_are_unit_length_and_deterministic(tmp_path):
    save_harmonyspeech_encoder(tmp_path)
    encoder = ge2e.load_harmonyspeech(tmp_path)
    front_end = ge2e.MelFrontEnd(40)
    rng = np.random.default_rng(1)
    wav = (rng.standard_normal(ge2e.SAMPLE_RATE * 3) * 0.1).astype(np.float32)
    windows = ge2e.partial_mels(wav, front_end, ge2e.HARMONYSPEECH_PREPROCESSING.partial_step)
    assert windows.shape[1:] == (ge2e.PARTIAL_FRAMES, 40)
    partials = ge2e.embed_windows(encoder, windows)
    assert partials.shape == (len(windows), 6)
    np.testing.assert_allclose(np.linalg.norm(partials, axis=1), 1.0, rtol=1e-5)
    speaker = ge2e.speaker_embedding(partials)
    assert speaker.shape == (6,) and abs(np.linalg.norm(speaker) - 1) < 1e-5
    np.testing.assert_array_equal(
        speaker, ge2e.speaker_embedding(ge2e.embed_windows(encoder, windows))
    )


def test_partial_windows_cover_the_utterance():
    step = 80
    # Short audio: one window, whatever its coverage.
    assert ge2e.partial_windows(ge2e.HOP * 10, step) == [(0, ge2e.PARTIAL_FRAMES)]
    windows = ge2e.partial_windows(ge2e.SAMPLE_RATE * 5, step)
    assert all(end - start == ge2e.PARTIAL_FRAMES for start, end in windows)
    assert all(b[0] - a[0] == step for a, b in itertools.pairwise(windows))
    last_start = windows[-1][0] * ge2e.HOP
    coverage = (ge2e.SAMPLE_RATE * 5 - last_start) / (ge2e.PARTIAL_FRAMES * ge2e.HOP)
    assert coverage >= ge2e.MIN_COVERAGE


def test_mel_filters_follow_the_slaney_scale():
    filters = ge2e.slaney_mel_filters(40)
    assert filters.shape == (40, ge2e.N_FFT // 2 + 1)
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()
    # Area normalisation: the narrow low bands weigh more per bin than the wide high ones.
    assert filters[0].max() > filters[-1].max()
    # Below 1 kHz the scale is linear: band centres there are evenly spaced.
    centres = peaks[peaks * ge2e.SAMPLE_RATE / ge2e.N_FFT < 900]
    assert np.ptp(np.diff(centres)) <= 1


def test_preprocessing_trims_long_silences_and_raises_quiet_speech():
    from support import piper_untrimmed

    speech, rate = piper_untrimmed("Silence around this sentence is removed")
    gap = np.zeros(rate * 2, np.float32)
    quiet = np.concatenate([gap, speech * 0.01, gap])
    wav = ge2e.preprocess(quiet, rate, ge2e.RESEMBLYZER_PREPROCESSING)
    assert len(wav) < len(speech) * ge2e.SAMPLE_RATE / rate + ge2e.SAMPLE_RATE
    rms_db = 20 * np.log10(np.sqrt(np.mean(wav**2)))
    assert rms_db > -32


def test_harmonyspeech_vad_samples_wrap_past_full_scale_as_its_reference_does():
    wav = np.array([0.5, 1.3, -1.3], np.float32)
    wrapped = np.frombuffer(ge2e.vad_pcm(wav, wrap=True), "<i2")
    clipped = np.frombuffer(ge2e.vad_pcm(wav, wrap=False), "<i2")
    assert wrapped.tolist() == [16384, 42597 - 65536, 65536 - 42597]
    assert clipped.tolist() == [16384, 32767, -32767]


def test_harmonyspeech_embeds_any_speech_and_resemblyzer_keeps_its_minimum():
    assert ge2e.HARMONYSPEECH_PREPROCESSING.min_speech_s == 0.03
    assert ge2e.RESEMBLYZER_PREPROCESSING.min_speech_s == 1.2
