"""The KittenTTS engine on a tiny model in the official layout, through the production loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tts_support import KITTEN_ALIASES, KITTEN_MODEL_FILE, kitten_waveform, write_tiny_kittentts

from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from speechmesh.services.tts import kittentts_text
from speechmesh.services.tts.engine import SynthesisParams
from speechmesh.services.tts.kittentts import KittenTts


def load(folder) -> KittenTts:
    engine = KittenTts(ModelConfig(id="kitten", family="kittentts", source=str(folder)))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_tiny_kittentts(tmp_path_factory.mktemp("kitten"), {"expr-voice-2-f": 0.8})


@pytest.fixture(scope="module")
def engine(model_dir) -> KittenTts:
    return load(model_dir)


def expected(model_dir, text: str, voice: str, speed: float) -> np.ndarray:
    return kitten_waveform(text, voice, speed)


def test_synthesis_runs_each_chunk_with_its_style_row_speed_and_trim(engine, model_dir):
    text = "Hello there, my friend. How are you today? " + "Fine " * 120
    settings = engine.prepare(SynthesisParams(voice="Jasper", speed=1.25))
    audio = engine.synthesize(text, settings)
    want = expected(model_dir, text, "expr-voice-2-m", 1.25)
    assert len(kittentts_text.chunks(text)) == 4  # two sentences, then 600 characters cut in two
    np.testing.assert_allclose(audio, want, rtol=1e-5, atol=1e-6)


def test_the_voice_speed_prior_multiplies_the_speed(engine, model_dir):
    audio = engine.synthesize("Hi there.", engine.prepare(SynthesisParams(voice="Bella")))
    np.testing.assert_allclose(
        audio, expected(model_dir, "Hi there.", "expr-voice-2-f", 0.8), rtol=1e-5
    )


def test_voices_come_from_the_voices_file_with_their_aliases(engine):
    voices = {v.id: v for v in engine.voices()}
    assert sorted(voices) == sorted(KITTEN_ALIASES.values())
    assert voices["expr-voice-5-m"].display_name == "Leo"
    assert voices["expr-voice-5-m"].languages == ("en-US",)
    assert engine.default_voice == "expr-voice-5-m"
    assert engine.describe().native_sample_rate_hz == 24000


def test_unknown_voice_lists_ids_and_aliases(engine):
    with pytest.raises(NotFound, match=r"'Tom'.*expr-voice-2-f.*Bella"):
        engine.prepare(SynthesisParams(voice="Tom"))


def test_clean_text_spells_numbers_out_first(engine, model_dir):
    options = SynthesisParams(family_options_case="kitten_tts", family_options={"clean_text": True})
    audio = engine.synthesize("It costs $3.", engine.prepare(options))
    want = expected(model_dir, "it costs three dollars.", engine.default_voice, 1.0)
    np.testing.assert_allclose(audio, want, rtol=1e-5)


def test_other_options_are_refused(engine):
    with pytest.raises(InvalidArgument) as raised:
        engine.prepare(SynthesisParams(family_options_case="piper"))
    assert raised.value.violations[0].field == "piper"
    with pytest.raises(InvalidArgument):
        engine.prepare(SynthesisParams(energy=1.1))


def test_missing_files_are_named(tmp_path):
    folder = write_tiny_kittentts(tmp_path / "model")
    (folder / KITTEN_MODEL_FILE).unlink()
    (folder / "voices.npz").unlink()
    with pytest.raises(FailedPrecondition, match=rf"lacks {KITTEN_MODEL_FILE}, voices.npz"):
        load(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FailedPrecondition, match=r"lacks config\.json"):
        load(folder)
    with pytest.raises(FailedPrecondition, match="no embedded default"):
        KittenTts(ModelConfig(id="kitten", family="kittentts")).load()


def test_file_names_come_from_the_config(tmp_path):
    folder = write_tiny_kittentts(tmp_path / "model")
    (folder / KITTEN_MODEL_FILE).rename(folder / "renamed.onnx")
    config = json.loads((folder / "config.json").read_text())
    config["model_file"] = "renamed.onnx"
    (folder / "config.json").write_text(json.dumps(config))
    assert load(folder).default_voice == "expr-voice-5-m"


def test_a_wrong_config_type_or_voices_shape_is_refused(tmp_path):
    folder = write_tiny_kittentts(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "type": "TORCH"}))
    with pytest.raises(FailedPrecondition, match="type 'TORCH'"):
        load(folder)
    (folder / "config.json").write_text(json.dumps(config))
    np.savez(folder / "voices.npz", **{"expr-voice-2-m": np.zeros((400, 128), np.float32)})
    with pytest.raises(FailedPrecondition, match=r"shape \[400, 128\]"):
        load(folder)


def test_a_hub_repo_in_the_cache_loads_like_a_folder(monkeypatch, tmp_path):
    from huggingface_hub import constants as hf_constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--KittenML--kitten-tts-nano-0.8"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    write_tiny_kittentts(repo / "snapshots" / revision)
    engine = KittenTts(
        ModelConfig(id="nano", family="kittentts", source="KittenML/kitten-tts-nano-0.8")
    )
    engine.load()
    assert engine.default_voice == "expr-voice-5-m"
    with pytest.raises(FailedPrecondition, match="offline"):
        KittenTts(
            ModelConfig(id="mini", family="kittentts", source="KittenML/kitten-tts-mini-0.8")
        ).load()
