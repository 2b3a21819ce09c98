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


def test_phonemes_keep_the_marks_espeak_never_sees():
    # Each stretch between marks is phonemized alone; the marks go back verbatim.
    assert kt.phonemes("He said — «yes»: of the people; ok!") == (
        "hiː sˈɛd — «jˈɛs»: ʌvðə pˈiːpəl; ˌoʊkˈeɪ! "
    )
    assert kt.phonemes("this is TTS,") == "ðɪs ɪz tˌiːtˌiːˈɛs, "
    assert kt.phonemes("«»,") == "«»,"


def test_pieces_cut_only_where_the_chunks_stay_the_same():
    text = "Dr. Smith paid $5. Then he left… and came back. 7.5 is more."
    for clean_text in (False, True):
        pieces = kt.pieces(text, clean_text)
        prepare = kt.clean if clean_text else (lambda t: t)
        cut = [c for p in pieces for c in kt.chunks(prepare(p.text))]
        assert cut == kt.chunks(prepare(text))
        assert all(text[p.start_char : p.end_char] == p.text for p in pieces)
    assert [p.text for p in kt.pieces(text, False)] == [
        "Dr.",
        "Smith paid $5.",
        "Then he left… and came back.",
        "7.5 is more.",
    ]


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
        ("At 9:05 AM and 14:00", "at nine oh five am and fourteen hundred"),
        ("The 1st, 22nd and 100th", "the first, twenty-second and one hundredth"),
        ("Pages 10-20", "pages ten to twenty"),
        ("Pi is 3.14", "pi is three point one four"),
        ("In 1200 years", "in twelve hundred years"),
        ("See https://example.com or mail a@b.io", "see or mail"),
        # The number takes the comma after it with it, as in the reference.
        ("COVID-19, then", "covid nineteen then"),
        ("I don't know, they've left", "i do not know, they have left"),
        (
            "It weighs 50kg at 25°C on 3.6GHz",
            "it weighs fifty kilograms at twenty-five degrees celsius on three point six gigahertz",
        ),
        ("The 80s and the 1990s", "the eighties and the nineteen nineties"),
        (
            "Call 555-1234 or 1-800-555-0199",
            "call five five five one two three four or "
            "one eight zero zero five five five zero one nine nine",
        ),
        ("GPT-4 beat a 7B model in 5GB", "gpt four beat a seven billion model in five gigabytes"),
        ("Add 3/4 cup and 1/2 or 2/3", "add three quarters cup and one half or two thirds"),
        ("A rate of 1e-4", "a rate of one times ten to the negative four"),
        ("Ping 192.168.1.1 now", "ping one nine two dot one six eight dot one dot one now"),
        ("Add .5 cup", "add zero point five cup"),
        ("The 20th, at 3:30pm", "the twentyth, at three thirty pm"),
        ("It costs $1.50", "it costs one dollars and fifty cents"),
        ("2500 people", "two thousand five hundred people"),
    ],
)
def test_cleaning_spells_things_out(text, clean):
    assert kt.clean(text) == clean
