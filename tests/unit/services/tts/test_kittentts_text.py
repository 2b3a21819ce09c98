"""KittenTTS's front-end: symbol table, chunking, token ids, text cleaning."""

from __future__ import annotations

import pytest

from speechmesh.services.tts import kittentts_text as kt


def test_the_symbol_table_has_the_reference_indices():
    # pad, ';', ':', ',', '.', ... as published; '"' and "'" appear twice, the later wins.
    assert (kt.SYMBOLS["$"], kt.SYMBOLS[";"], kt.SYMBOLS["."], kt.SYMBOLS[" "]) == (0, 1, 4, 16)
    assert (kt.SYMBOLS["A"], kt.SYMBOLS["a"], kt.SYMBOLS["ɑ"]) == (17, 43, 69)
    assert (kt.SYMBOLS['"'], kt.SYMBOLS["'"], kt.SYMBOLS["ᵻ"]) == (15, 176, 177)
    assert len(kt.SYMBOLS) == 175


def test_ids_join_words_and_marks_by_single_spaces_and_wrap_them():
    assert kt.ids_of_phonemes("ab,  c.") == [0, 43, 44, 16, 3, 16, 45, 16, 4, 10, 0]
    assert kt.ids_of_phonemes("a#b") == [0, 43, 16, 16, 44, 10, 0]  # '#' is no symbol


def test_token_ids_come_from_espeak_phonemes():
    ids = kt.token_ids("Hello world,")
    assert ids[:1] == [0] and ids[-2:] == [10, 0]
    assert kt.phonemes("Hello world,").startswith("həlˈoʊ")


def test_chunks_drop_sentence_marks_and_end_in_punctuation():
    assert kt.chunks("Hello world. How are you?! Fine; thanks") == [
        "Hello world,",
        "How are you,",
        "Fine; thanks,",
    ]
    long = " ".join(["word"] * 200)
    pieces = kt.chunks(long)
    assert all(len(p) <= 401 and p.endswith(",") for p in pieces) and len(pieces) == 3


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("I have 21 cats", "i have twenty-one cats"),
        ("It costs $3.50 now", "it costs three dollars and fifty cents now"),
        ("$1 and €2,000", "one dollar and two thousand euros"),
        ("A $2.5M deal", "a two point five million dollars deal"),
        ("50% off", "fifty percent off"),
        ("At 9:05 AM and 14:00", "at nine oh five a m and fourteen hundred"),
        ("The 1st, 22nd and 100th", "the first, twenty-second and one hundredth"),
        ("Pages 10-20", "pages ten to twenty"),
        ("Pi is 3.14", "pi is three point one four"),
        ("In 1200 years", "in twelve hundred years"),
        ("See https://example.com or mail a@b.io", "see or mail"),
        ("COVID-19, then", "covid-nineteen, then"),
    ],
)
def test_cleaning_spells_things_out(text, clean):
    assert kt.clean(text) == clean
