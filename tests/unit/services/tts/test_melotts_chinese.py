"""MeloTTS's Chinese front-end pieces on their own: splitting, normalisation, tone sandhi
and the syllable table (the reference's outputs are compared in tests/parity)."""

from __future__ import annotations

import pytest

pytest.importorskip("jieba", reason="the melotts extra is not installed")
pytest.importorskip("pypinyin", reason="the melotts extra is not installed")

from speechmesh.services.tts.melotts import chinese_sandhi, chinese_text
from speechmesh.services.tts.melotts.chinese_g2p import _spell, syllable_table
from speechmesh.services.tts.melotts.splitting import split_cjk


def test_pieces_join_until_past_ten_characters_and_short_tails_join_the_last():
    assert split_cjk("你好。世界！今天天气很好，我们走吧。好") == [
        "你好. 世界. 今天天气很好,",
        "我们走吧. 好",
    ]


def test_normalisation_reads_numbers_and_maps_or_drops_marks():
    assert chinese_text.normalize("共3.5元（含税）~嗯") == "共三点五元'含税'-恩"
    assert chinese_text.normalize("Привет ©") == " "


@pytest.mark.parametrize(
    ("word", "tones"),
    [
        ("你好", "23"),  # 3 + 3 → 2 + 3
        ("不怕", "24"),  # 不 before a fourth tone
        ("一天", "41"),  # 一 before other tones
        ("一段", "24"),  # 一 before a fourth tone
        ("看一看", "454"),  # A一A
        ("第一", "41"),  # ordinal
        ("桌子", "15"),  # 子 after a noun
    ],
)
def test_tone_sandhi(word, tones):
    pos = "n" if word == "桌子" else "v"
    finals = chinese_sandhi.change_tones(word, pos, chinese_sandhi.finals_of(word))
    assert "".join(final[-1] for final in finals) == tones


def test_syllables_are_respelled_as_the_table_has_them():
    table = syllable_table()
    assert _spell("", "i") == "yi" and _spell("", "v") == "yu" and _spell("", "uo") == "wo"
    assert _spell("d", "uei") == "dui" and _spell("j", "iou") == "jiu"
    assert table["yu"] == ["y", "v"] and table["zhi"] == ["zh", "ir"]
