"""OpenVoice V1 base speakers on tiny random checkpoints in the official layout: strict
loading, the config's facts, the reference's splitting quirks, noise and silences."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from checkpoints import save_openvoice_base

from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from speechmesh.services.tts.engine import SynthesisParams
from speechmesh.services.tts.openvoice import text
from speechmesh.services.tts.openvoice.checkpoint import load_speakers
from speechmesh.services.tts.openvoice.engine import OpenVoiceV1Base

RATE = 16000


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> OpenVoiceV1Base:
    root = tmp_path_factory.mktemp("openvoice-base")
    save_openvoice_base(root)
    loaded = OpenVoiceV1Base(
        ModelConfig(id="ov", family="openvoice-v1-base", source=str(root), threads=1)
    )
    loaded.load()
    return loaded


def test_both_languages_load_strictly_with_weight_norm_folded(tmp_path):
    states = save_openvoice_base(tmp_path)
    models = load_speakers(tmp_path)
    assert set(models) == {"EN", "ZH"}
    v, g = states["EN"]["dec.ups.0.weight_v"], states["EN"]["dec.ups.0.weight_g"]
    expected = g * v / v.square().sum(dim=(1, 2), keepdim=True).sqrt()
    assert torch.allclose(models["EN"].dec.ups[0].weight, expected)
    # The posterior encoder is loaded (the checkpoint carries it) though never run.
    assert torch.equal(models["EN"].enc_q.proj.bias, states["EN"]["enc_q.proj.bias"])
    assert models["EN"].dec.conv_post.bias is None


def test_a_missing_or_unexpected_key_is_named(tmp_path):
    with pytest.raises(FailedPrecondition, match=r"enc_q\.proj\.bias"):
        save_openvoice_base(tmp_path / "a", languages=("EN",), drop="enc_q.proj.bias")
        load_speakers(tmp_path / "a")
    with pytest.raises(FailedPrecondition, match=r"ref_enc\.proj\.weight"):
        extra = {"ref_enc.proj.weight": torch.zeros(8, 128)}
        save_openvoice_base(tmp_path / "b", languages=("ZH",), extra=extra)
        load_speakers(tmp_path / "b")


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    save_openvoice_base(tmp_path, languages=("EN",))
    checkpoint = tmp_path / "checkpoints/base_speakers/EN/checkpoint.pth"
    torch.save({"model": {}, "hook": np.float64}, checkpoint)  # a global, not a tensor
    with pytest.raises(FailedPrecondition):
        load_speakers(tmp_path)


def test_config_mistakes_and_missing_folders_are_named(tmp_path):
    with pytest.raises(FailedPrecondition, match="no OpenVoice V1 base speaker"):
        load_speakers(tmp_path)
    save_openvoice_base(tmp_path, languages=("EN",))
    config = tmp_path / "checkpoints/base_speakers/EN/config.json"
    document = json.loads(config.read_text())
    document["data"]["text_cleaners"] = ["english_cleaners"]
    config.write_text(json.dumps(document))
    with pytest.raises(FailedPrecondition, match="cjke_cleaners2"):
        load_speakers(tmp_path)
    document["data"]["text_cleaners"] = ["cjke_cleaners2"]
    document["speakers"]["loud"] = 99
    config.write_text(json.dumps(document))
    with pytest.raises(FailedPrecondition, match="'loud': 99"):
        load_speakers(tmp_path)


def test_languages_styles_and_speaker_ids_come_from_the_configs(engine):
    assert engine.languages() == ("en", "zh")
    voices = {v.id: v.languages for v in engine.voices()}
    assert voices["default"] == ("en", "zh")
    assert voices["friendly"] == ("en",)
    assert len(voices) == 9
    # EN ids start at 1, as released: "default" is speaker 1, "friendly" 9.
    assert engine.prepare(SynthesisParams()).speaker == 1
    assert engine.prepare(SynthesisParams(voice="friendly")).speaker == 9
    assert engine.prepare(SynthesisParams(language="zh")).speaker == 0
    with pytest.raises(NotFound, match=r"'whispering' is not a style .* in 'zh'"):
        engine.prepare(SynthesisParams(language="zh", voice="whispering"))
    with pytest.raises(NotFound, match=r"language 'fr' is not served .* it speaks en, zh$"):
        engine.prepare(SynthesisParams(language="fr"))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"noise_scale": -0.1}, "openvoice.noise_scale"),
        ({"noise_scale_w": float("nan")}, "openvoice.noise_scale_w"),
        ({"sdp_ratio": 1.5}, "openvoice.sdp_ratio"),
    ],
)
def test_bad_options_name_their_field(engine, options, field):
    params = SynthesisParams(family_options_case="openvoice", family_options=options)
    with pytest.raises(InvalidArgument) as raised:
        engine.prepare(params)
    assert raised.value.violations[0].field == field


def test_the_default_scales_are_the_references(engine):
    scales = engine.prepare(SynthesisParams(speed=2.0)).scales
    assert (scales.noise_scale, scales.noise_scale_w, scales.sdp_ratio) == (0.667, 0.6, 0.2)
    assert scales.length_scale == 0.5


@pytest.mark.parametrize(
    ("whole", "language", "pieces"),
    [
        # Cuts after every mark, inside numbers too; brackets and quotes go.
        ("It costs $5.50 (or so).", "EN", ["It costs $5. 50 or so."]),
        # A piece closes once it has more than 10 words; one of 2 words or fewer merges.
        (
            "One two three four five six, seven eight nine ten eleven. Yes. And the rest",
            "EN",
            ["One two three four five six, seven eight nine ten eleven.", "Yes. And the rest"],
        ),
        ("Hi", "EN", ["Hi"]),
        ("", "EN", []),
        ("()", "EN", []),
        (
            "你好，世界。今天天气很好，我们去公园吧！",
            "ZH",
            ["你好, 世界. 今天天气很好,", "我们去公园吧."],
        ),
    ],
)
def test_splitting_follows_the_reference(whole, language, pieces):
    assert text.split(whole, language) == pieces
    for piece in pieces:
        assert text.tidy(piece, language) == piece


def test_camel_case_is_parted_after_splitting_and_the_end_closed():
    assert text.clean("OpenVoice", "EN") == text.clean("Open Voice", "EN")
    assert text.clean("OpenVoice", "EN").endswith(".")
    assert text.clean("我爱OpenVoice", "ZH") == text.clean("我爱Open Voice", "ZH")


def test_ids_drop_unknown_symbols_and_intersperse_blanks(engine):
    settings = engine.prepare(SynthesisParams())
    ids = engine.phoneme_ids("Hello.", settings)
    assert len(ids) % 2 == 1 and ids[::2] == [0] * (len(ids) // 2 + 1)
    assert 0 not in ids[1::2]
    chinese = engine.prepare(SynthesisParams(language="zh"))
    # Characters outside the symbols go without a word, as in the reference...
    assert engine.phoneme_ids("好Ж", chinese) == engine.phoneme_ids("好", chinese)
    # ...but a text with nothing readable is refused.
    for whole, chosen in (("Ж ✓", chinese), ("() …", settings), ("", settings)):
        with pytest.raises(InvalidArgument, match=r"nothing the '(en|zh)' speaker can read"):
            engine.pieces(whole, chosen)


def test_each_piece_ends_in_its_silence_and_noise_follows_the_seed(engine):
    settings = engine.prepare(SynthesisParams(seed=1, speed=0.5))
    silence = int(RATE * 0.05 / 0.5)
    assert settings.silence_samples == silence
    first = engine.synthesize("Hello there.", settings)
    assert first.dtype == np.float32
    assert not first[-silence:].any() and first[:-silence].any()
    again = engine.synthesize("Hello there.", engine.prepare(SynthesisParams(seed=1, speed=0.5)))
    assert np.array_equal(first, again)
    other = engine.synthesize("Hello there.", engine.prepare(SynthesisParams(seed=2, speed=0.5)))
    assert not np.array_equal(first, other)


def test_both_noises_zero_is_deterministic_whatever_the_seed(engine):
    quiet = {"noise_scale": 0.0, "noise_scale_w": 0.0}

    def say(seed):
        params = SynthesisParams(seed=seed, family_options_case="openvoice", family_options=quiet)
        return engine.synthesize("Hello there.", engine.prepare(params))

    assert np.array_equal(say(1), say(2))


@pytest.mark.parametrize(
    ("whole", "language", "plain", "read"),
    [
        (
            "It costs $5.50 each.",
            "EN",
            ["It costs $5. 50 each."],
            ["It costs five dollars, fifty cents each."],
        ),
        ("Pi is 3.14 or so.", "EN", ["Pi is 3. 14 or so."], ["Pi is three point fourteen or so."]),
        ("气温25.5度。", "ZH", ["气温25. 5度."], ["气温二十五点五度."]),
    ],
)
def test_normalize_numbers_reads_them_before_the_splitter_cuts(
    engine, whole, language, plain, read
):
    tag = {"EN": "en", "ZH": "zh"}[language]
    default = engine.prepare(SynthesisParams(language=tag))
    assert [p.text for p in engine.pieces(whole, default)] == plain
    params = SynthesisParams(
        language=tag, family_options_case="openvoice", family_options={"normalize_numbers": True}
    )
    normalized = engine.prepare(params)
    pieces = [p.text for p in engine.pieces(whole, normalized)]
    assert pieces == read
    # A piece is read once: the ids are those of the spelt-out piece either way.
    assert engine.phoneme_ids(pieces[0], normalized) == engine.phoneme_ids(pieces[0], default)
