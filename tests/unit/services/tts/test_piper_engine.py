"""The Piper engine: our own inference equals piper-tts's, options, voices, voice files."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from speechmesh.services.tts import espeak
from speechmesh.services.tts.engine import SynthesisParams
from speechmesh.services.tts.piper import Piper, embedded_model_path

TEXT = "The quick brown fox jumps over the lazy dog. Dr. Smith paid $3.50, didn't he?"
ZERO_NOISE = {"noise_scale": 0.0, "noise_w": 0.0}


def piper_params(**options) -> SynthesisParams:
    return SynthesisParams(family_options_case="piper", family_options=options)


@pytest.fixture(scope="module")
def engine() -> Piper:
    piper = Piper(ModelConfig(id="piper-joe", family="piper"))
    piper.load()
    return piper


def test_output_equals_piper_tts_on_the_same_voice(engine):
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(embedded_model_path())
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    reference = np.concatenate([c.audio_float_array for c in voice.synthesize(TEXT, config)])
    ours = engine.synthesize(TEXT, engine.prepare(piper_params(**ZERO_NOISE)))
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, reference)


def test_zero_noise_is_deterministic_and_default_noise_varies(engine):
    fixed = engine.prepare(piper_params(**ZERO_NOISE))
    assert np.array_equal(engine.synthesize("Again.", fixed), engine.synthesize("Again.", fixed))
    noisy = engine.prepare(SynthesisParams())
    assert not np.array_equal(
        engine.synthesize("Again.", noisy), engine.synthesize("Again.", noisy)
    )


def test_speed_divides_the_length_scale_and_silence_is_appended(engine):
    normal = engine.synthesize("One two three four.", engine.prepare(piper_params(**ZERO_NOISE)))
    fast = engine.synthesize(
        "One two three four.",
        engine.prepare(
            SynthesisParams(speed=2.0, family_options_case="piper", family_options=ZERO_NOISE)
        ),
    )
    assert 0.4 < len(fast) / len(normal) < 0.65
    quiet = engine.prepare(piper_params(sentence_silence_ms=250, **ZERO_NOISE))
    padded = engine.synthesize("One two three four.", quiet)
    assert len(padded) == len(normal) + 250 * 22050 // 1000
    assert not padded[len(normal) :].any()


def test_describe_reports_the_voice_its_language_and_rate(engine):
    description = engine.describe()
    assert description.native_sample_rate_hz == 22050
    assert description.languages == ("en-US",)
    assert [(v.id, v.languages) for v in description.voices] == [("joe", ("en-US",))]


@pytest.mark.parametrize(
    ("params", "error", "field"),
    [
        (SynthesisParams(speed=0.0), InvalidArgument, "speed"),
        (SynthesisParams(speed=-1.0), InvalidArgument, "speed"),
        (SynthesisParams(speed=float("nan")), InvalidArgument, "speed"),
        (SynthesisParams(pitch=1.2), InvalidArgument, "pitch"),
        (SynthesisParams(seed=7), InvalidArgument, "seed"),
        (SynthesisParams(family_options_case="kitten_tts"), InvalidArgument, "kitten_tts"),
        (piper_params(noise_scale=-0.1), InvalidArgument, "piper.noise_scale"),
        (piper_params(length_scale=0.0), InvalidArgument, "piper.length_scale"),
        (
            piper_params(sentence_silence_ms=60_000),
            InvalidArgument,
            "piper.sentence_silence_ms",
        ),
    ],
)
def test_options_the_model_cannot_honour_are_refused(engine, params, error, field):
    with pytest.raises(error) as raised:
        engine.prepare(params)
    assert raised.value.violations[0].field == field


def test_a_language_the_voice_does_not_speak_is_not_found_listing_those_served(engine):
    with pytest.raises(NotFound) as raised:
        engine.prepare(SynthesisParams(language="de"))
    assert "language 'de' is not served" in str(raised.value)
    assert f"it speaks {', '.join(engine.languages())}" in str(raised.value)


def test_an_unknown_voice_is_not_found_and_lists_the_known_ones(engine):
    with pytest.raises(NotFound, match=r"'amy'.*known: joe"):
        engine.prepare(SynthesisParams(voice="amy"))
    assert engine.prepare(SynthesisParams(voice="joe", language="en")) is not None


def copy_voice(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = embedded_model_path()
    shutil.copy(source, folder / f"{name}.onnx")
    shutil.copy(f"{source}.json", folder / f"{name}.onnx.json")
    return folder / f"{name}.onnx"


def test_a_voice_file_from_any_folder_loads_the_same_way(tmp_path):
    path = copy_voice(tmp_path / "voices", "en_US-copy-medium")
    for source in (str(path), str(path.parent)):
        piper = Piper(ModelConfig(id="copy", family="piper", source=source))
        piper.load()
        assert piper.default_voice == "joe"


def test_a_folder_of_several_voices_needs_options_file(tmp_path):
    folder = tmp_path / "voices"
    copy_voice(folder / "a", "one")
    copy_voice(folder / "b", "two")
    with pytest.raises(FailedPrecondition, match=r"2 Piper voices.*a/one.onnx.*options.file"):
        Piper(ModelConfig(id="x", family="piper", source=str(folder))).load()
    chosen = Piper(
        ModelConfig(id="x", family="piper", source=str(folder), options={"file": "b/two.onnx"})
    )
    chosen.load()


def test_missing_or_broken_voice_files_are_a_failed_precondition(tmp_path):
    path = copy_voice(tmp_path, "voice")
    Path(f"{path}.json").unlink()
    with pytest.raises(FailedPrecondition, match=r"lacks voice.onnx.json"):
        Piper(ModelConfig(id="x", family="piper", source=str(path))).load()
    Path(f"{path}.json").write_text(json.dumps({"audio": {}}))
    with pytest.raises(FailedPrecondition, match=r"not a valid \.onnx\.json"):
        Piper(ModelConfig(id="x", family="piper", source=str(path))).load()
    with pytest.raises(FailedPrecondition, match="unknown piper options"):
        Piper(ModelConfig(id="x", family="piper", options={"noise": 1})).load()


def test_a_multi_speaker_voice_lists_its_speakers_and_feeds_sid(tmp_path, engine):
    path = copy_voice(tmp_path, "multi")
    config = json.loads(Path(f"{path}.json").read_text())
    config.update(num_speakers=2, speaker_id_map={"anna": 0, "bert": 1}, default_speaker_id=1)
    Path(f"{path}.json").write_text(json.dumps(config))
    multi = Piper(ModelConfig(id="multi", family="piper", source=str(path)))
    multi.load()
    assert [v.id for v in multi.voices()] == ["anna", "bert"]
    assert multi.default_voice == "bert"
    assert multi.prepare(SynthesisParams(voice="anna")).speaker_id == 0


def test_without_piper_tts_the_engine_says_what_to_install(monkeypatch):
    monkeypatch.setattr(espeak, "_bridge", None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "piper" else real_find_spec(name, *args),
    )
    with pytest.raises(FailedPrecondition, match=r"GPL-3.0.*pip install 'speechmesh\[piper\]'"):
        Piper(ModelConfig(id="x", family="piper")).load()


def hub_cache(monkeypatch, tmp_path: Path, repo_id: str) -> Path:
    """An offline hub cache holding `repo_id`; returns its snapshot folder to fill."""
    from huggingface_hub import constants as hf_constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return repo / "snapshots" / revision


def test_a_voice_in_a_hub_repo_of_many_resolves_through_the_cache(monkeypatch, tmp_path):
    snapshot = hub_cache(monkeypatch, tmp_path, "rhasspy/piper-voices")
    copy_voice(snapshot / "en" / "en_US" / "joe" / "medium", "en_US-joe-medium")
    copy_voice(snapshot / "en" / "en_US" / "amy" / "low", "en_US-amy-low")
    chosen = Piper(
        ModelConfig(
            id="joe",
            family="piper",
            source="rhasspy/piper-voices",
            options={"file": "en/en_US/joe/medium/en_US-joe-medium.onnx"},
        )
    )
    chosen.load()
    assert chosen.describe().native_sample_rate_hz == 22050
    with pytest.raises(FailedPrecondition, match=r"options\.file"):
        Piper(ModelConfig(id="x", family="piper", source="rhasspy/piper-voices")).load()
