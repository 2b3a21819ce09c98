"""Splitting text into pieces: sentence rules, long sentences, fragments equal whole text."""

from __future__ import annotations

import itertools
import random

import pytest

from speechmesh.runtime.text import TextSplitter, split_text

TEXT = (
    "Hello world. This is Dr. Smith from the U.S. Army! Is it 3.50 dollars? "
    '"Yes." He said... Then J. K. Rowling wrote a book.\n\nA heading\n\nAnd a body'
)


def texts(text: str, max_chars: int = 400) -> list[str]:
    return [piece.text for piece in split_text(text, max_chars)]


def test_sentences_end_at_terminal_punctuation_followed_by_more_text():
    assert texts(TEXT) == [
        "Hello world.",
        "This is Dr. Smith from the U.S. Army!",
        "Is it 3.50 dollars?",
        '"Yes."',
        "He said...",
        "Then J. K. Rowling wrote a book.",
        "A heading",
        "And a body",
    ]


def test_offsets_point_at_each_piece_and_skip_the_whitespace_between():
    pieces = split_text(TEXT, 400)
    assert [p.index for p in pieces] == list(range(len(pieces)))
    for piece in pieces:
        assert TEXT[piece.start_char : piece.end_char] == piece.text
    for before, after in itertools.pairwise(pieces):
        assert not TEXT[before.end_char : after.start_char].strip()


def test_offsets_count_code_points():
    text = "Ünïcödé façade. 🙂 Next one."
    pieces = split_text(text, 400)
    assert [text[p.start_char : p.end_char] for p in pieces] == ["Ünïcödé façade.", "🙂 Next one."]


def test_long_sentences_are_cut_at_clauses_then_spaces_then_anywhere():
    clauses = "one two three, four five six, seven eight nine, ten eleven twelve."
    assert texts(clauses, 32) == [
        "one two three, four five six,",
        "seven eight nine,",
        "ten eleven twelve.",
    ]
    words = "alpha beta gamma delta epsilon zeta eta theta"
    assert texts(words, 20) == ["alpha beta gamma", "delta epsilon zeta", "eta theta"]
    assert texts("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    for piece in split_text(clauses * 20, 50):
        assert len(piece.text) <= 50


def test_whitespace_only_and_empty_text_give_no_pieces():
    assert split_text("", 10) == []
    assert split_text(" \n\t ", 10) == []


@pytest.mark.parametrize("max_chars", [12, 40, 400])
def test_fragments_of_any_size_give_the_pieces_of_the_whole_text(max_chars):
    text = TEXT + " " + "word, " * 30 + "end."
    whole = split_text(text, max_chars)
    rng = random.Random(max_chars)
    for _ in range(50):
        splitter, pieces, position = TextSplitter(max_chars), [], 0
        while position < len(text):
            size = rng.randint(1, 7)
            pieces += splitter.feed(text[position : position + size])
            position += size
        pieces += splitter.flush()
        assert pieces == whole


def test_a_sentence_waits_until_text_after_it_shows_it_ended():
    splitter = TextSplitter(400)
    assert splitter.feed("It is Dr.") == []
    assert splitter.feed(" ") == []
    assert splitter.feed("Smith. ") == []
    (piece,) = splitter.feed("Then")
    assert piece.text == "It is Dr. Smith."
    assert splitter.received_chars == len("It is Dr. Smith. Then")


def test_flush_cuts_pending_text_and_later_text_goes_on_counting():
    splitter = TextSplitter(400)
    splitter.feed("Half a sent")
    (first,) = splitter.flush()
    assert (first.text, first.start_char, first.end_char) == ("Half a sent", 0, 11)
    assert [(p.text, p.start_char) for p in splitter.feed("ence. More")] == [("ence.", 11)]
    assert [(p.text, p.start_char) for p in splitter.flush()] == [("More", 17)]
