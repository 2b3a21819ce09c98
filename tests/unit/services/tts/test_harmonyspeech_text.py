"""The HarmonySpeech synthesizer's English cleaners and symbol ids."""

from __future__ import annotations

import pytest

from speechmesh.services.tts.harmonyspeech import text


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Hello   World", "hello world"),
        ("Dr. Smith met Mrs. Jones.", "doctor smith met misess jones."),
        (
            "In 1984 or 2005, not 2000.",
            "in nineteen eighty-four or two thousand five, not two thousand.",
        ),
        ("It costs $3.50, or $1.", "it costs three dollars, fifty cents, or one dollar."),
        ("1,000,000 people", "one million people"),
        ("the 21st time, 3.14", "the twenty-first time, three point fourteen"),
        ("Café naïve", "cafe naive"),
    ],
)
def test_english_cleaners(raw, cleaned):
    assert text.clean(raw) == cleaned


def test_symbol_set_and_ids():
    assert len(text.SYMBOLS) == 66 and text.SYMBOLS[:2] == ("_", "~")
    ids = text.token_ids("  Hi! ")
    assert [text.SYMBOLS[i] for i in ids] == ["h", "i", "!", "~"]


def test_braces_and_unknown_characters_are_dropped():
    ids = text.token_ids("a {HH AH0} b 🙂 #")
    # The text either side of braces is cleaned on its own, as in training.
    assert "".join(text.SYMBOLS[i] for i in ids) == "a  b ~"
    assert text.token_ids("🙂") == [text.SYMBOL_IDS["~"]]
    assert not text.speakable(text.token_ids("🙂 {HH AY} "))
    assert text.speakable(text.token_ids("?"))
