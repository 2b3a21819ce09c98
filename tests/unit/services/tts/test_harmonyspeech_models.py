"""HarmonySpeech V1 synthesizer and vocoder on tiny random checkpoints in the official
layout, loaded through the production loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from harmonyspeech_checkpoint import TINY_VOCODER, save_synthesizer, save_vocoder

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.tts.harmonyspeech import checkpoint, text
from speechmesh.services.tts.harmonyspeech.forward_tacotron import frame_counts
from speechmesh.services.tts.harmonyspeech.melgan import context_frames, min_frames
from speechmesh.services.tts.vocoding import MelStream

SENTENCE = "Hello there, how are you today?"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("harmony")
    reference_synthesizer = save_synthesizer(root)
    reference_generator = save_vocoder(root)
    return root, reference_synthesizer, reference_generator


@pytest.fixture(scope="module")
def synthesizer(snapshot):
    return checkpoint.load_synthesizer(snapshot[0])


@pytest.fixture(scope="module")
def vocoder(snapshot):
    return checkpoint.load_vocoder(snapshot[0])


def _inputs(sentence: str = SENTENCE, seed: int = 0):
    speaker = torch.randn(1, 6, generator=torch.Generator().manual_seed(seed))
    return torch.tensor([text.token_ids(sentence)]), speaker


def _mel(model, speed=1.0, pitch=1.0, energy=1.0, sentence=SENTENCE):
    symbols, speaker = _inputs(sentence)
    with torch.inference_mode():
        prosody = model.prosody(symbols, speaker, speed, pitch, energy)
        return prosody, model.generate(symbols, speaker, prosody)


def test_the_loaded_synthesizer_is_the_saved_one(snapshot, synthesizer):
    _, saved, _ = snapshot
    assert synthesizer.step.item() == 1234
    for name, tensor in saved.state_dict().items():
        assert torch.equal(synthesizer.state_dict()[name], tensor), name
    assert torch.equal(_mel(synthesizer)[1], _mel(saved)[1])


def test_frames_are_the_sum_of_rounded_durations(synthesizer):
    prosody, mel = _mel(synthesizer)
    assert mel.shape == (80, int(frame_counts(prosody.durations).sum()))
    assert len(prosody.durations) == len(text.token_ids(SENTENCE))


def test_speed_divides_the_durations(synthesizer):
    normal, slow_mel = _mel(synthesizer)
    fast, fast_mel = _mel(synthesizer, speed=2.0)
    torch.testing.assert_close(fast.durations, normal.durations / 2)
    # Per symbol, rounding moves a frame count by at most half a frame.
    assert abs(fast_mel.shape[1] - slow_mel.shape[1] / 2) <= len(normal.durations) / 2


def test_pitch_and_energy_scale_their_contours(synthesizer):
    normal, mel = _mel(synthesizer)
    scaled, scaled_mel = _mel(synthesizer, pitch=1.5, energy=0.5)
    torch.testing.assert_close(scaled.pitch, normal.pitch * 1.5)
    torch.testing.assert_close(scaled.energy, normal.energy * 0.5)
    torch.testing.assert_close(scaled.durations, normal.durations)
    assert not torch.allclose(scaled_mel, mel)


def test_synthesis_is_deterministic(synthesizer):
    assert torch.equal(_mel(synthesizer)[1], _mel(synthesizer)[1])


def test_the_speaker_changes_the_mel(synthesizer):
    symbols, _ = _inputs()
    mels = []
    for seed in (1, 2):
        _, speaker = _inputs(seed=seed)
        with torch.inference_mode():
            prosody = synthesizer.prosody(symbols, speaker)
            prosody = type(prosody)(torch.full_like(prosody.durations, 3.0), *_contours(prosody))
            mels.append(synthesizer.generate(symbols, speaker, prosody))
    assert mels[0].shape == mels[1].shape and not torch.allclose(mels[0], mels[1])


def _contours(prosody):
    return prosody.pitch, prosody.energy


def test_the_vocoder_folds_weight_norm_like_torch(snapshot, vocoder):
    _, _, reference = snapshot
    mel = np.random.default_rng(0).uniform(-4, 4, (80, 12)).astype(np.float32)
    with torch.inference_mode():
        bands = reference(torch.from_numpy(mel / checkpoint.MEL_SCALE)[None])
        expected = vocoder.pqmf(bands)[0, 0].numpy()
    audio = vocoder(mel)
    assert audio.shape == (12 * 200,) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, expected, atol=1e-5)


def test_streamed_windows_equal_the_whole_within_the_context(vocoder):
    mel = np.random.default_rng(1).uniform(-4, 4, (80, 90)).astype(np.float32)
    whole = vocoder(mel)

    def streamed(context: int) -> np.ndarray:
        stream = MelStream(80, context, vocoder.samples_per_frame)
        windows = [stream.push(mel[:, i : i + 7]) for i in range(0, 90, 7)] + [stream.finish()]
        return np.concatenate(
            [vocoder(w.mel)[w.keep_from : w.keep_to] for w in windows if w is not None]
        )

    assert vocoder.context_frames == context_frames(vocoder.config)
    np.testing.assert_allclose(streamed(vocoder.context_frames), whole, atol=1e-5)
    assert not np.allclose(streamed(1), whole, atol=1e-3)  # too little overlap shows


def test_official_vocoder_sizes_give_200_samples_and_a_bounded_context():
    official = dict(TINY_VOCODER, channels=384, stacks=4)
    config = checkpoint.MelGanConfig.from_json({"model": official}, "official")
    assert config.samples_per_frame == 200
    assert context_frames(config) == 18
    assert min_frames(config) == 6  # a dilation-27 pad at 5 samples per frame


def test_short_mels_still_give_frames_times_hop_samples(vocoder):
    mel = np.random.default_rng(2).uniform(-4, 4, (80, 6)).astype(np.float32)
    assert vocoder.min_frames == 4
    for frames in (1, 2, 3):
        audio = vocoder(mel[:, :frames])
        assert audio.shape == (frames * 200,) and np.isfinite(audio).all()


def test_flat_configs_load(tmp_path):
    save_synthesizer(tmp_path, nested=False)
    save_vocoder(tmp_path, nested=False)
    assert checkpoint.load_synthesizer(tmp_path / "synthesizer").config.n_mels == 80
    assert checkpoint.load_vocoder(tmp_path / "vocoder").n_mels == 80


SYNTH = (save_synthesizer, checkpoint.load_synthesizer)
VOCODER = (save_vocoder, checkpoint.load_vocoder)


@pytest.mark.parametrize(
    ("part", "change", "named"),
    [
        (SYNTH, {"drop": "lstm.weight_hh_l0"}, "lstm.weight_hh_l0"),
        (SYNTH, {"extra": "speaker_proj.weight"}, "speaker_proj.weight"),
        (VOCODER, {"drop": "melgan.1.weight_v"}, "melgan.1.weight_g"),
        (VOCODER, {"drop": "melgan.3.bias"}, "melgan.3.bias"),
    ],
)
def test_key_mismatches_are_named(tmp_path, part, change, named):
    saver, loader = part
    saver(tmp_path, **change)
    with pytest.raises(FailedPrecondition, match=named.replace(".", r"\.")):
        loader(tmp_path)


def test_missing_files_and_bad_configs_are_named(tmp_path):
    with pytest.raises(FailedPrecondition, match=r"synthesizer\.pt"):
        (tmp_path / "synthesizer").mkdir()
        (tmp_path / "synthesizer" / "config.json").write_text("{}")
        checkpoint.load_synthesizer(tmp_path)
    save_vocoder(tmp_path)
    config = tmp_path / "vocoder" / "config.json"
    config.write_text(json.dumps({"model": dict(TINY_VOCODER, upsample_scales=[5, 5])}))
    with pytest.raises(FailedPrecondition, match="200"):
        checkpoint.load_vocoder(tmp_path)
    config.write_text(json.dumps({"model": {"in_channels": 80}}))
    with pytest.raises(FailedPrecondition, match="out_channels"):
        checkpoint.load_vocoder(tmp_path)
