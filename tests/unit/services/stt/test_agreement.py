"""The committed prefix only grows, and only with words two decodes agree on."""

from __future__ import annotations

from speechmesh.services.stt.agreement import Agreement


def test_words_are_committed_once_two_decodes_agree():
    agreement = Agreement()
    agreement.update("the quit")
    assert agreement.committed == [] and agreement.unstable == ["the", "quit"]
    agreement.update("the quick brown")
    assert agreement.committed == ["the"]
    assert agreement.unstable == ["quick", "brown"]
    agreement.update("the quick brown fox")
    assert agreement.committed == ["the", "quick", "brown"]
    assert agreement.unstable == ["fox"]
    assert agreement.stability == 0.75


def test_case_and_punctuation_do_not_block_agreement():
    agreement = Agreement()
    agreement.update("Dog, cat")
    agreement.update("dog cat.")
    assert agreement.committed == ["dog", "cat."]
    assert agreement.unstable == []


def test_committed_words_never_change():
    agreement = Agreement()
    agreement.update("one two three")
    agreement.update("one two four")
    assert agreement.committed == ["one", "two"]
    # A decode starts with the committed words (they are its forced prefix).
    agreement.update("one two five six")
    assert agreement.committed == ["one", "two"]
    assert agreement.unstable == ["five", "six"]
    agreement.update("one two five seven")
    assert agreement.committed_text == "one two five"
    assert agreement.words == ["one", "two", "five", "seven"]


def test_empty_decodes_change_nothing_committed():
    agreement = Agreement()
    agreement.update("hello there")
    agreement.update("hello there")
    agreement.update("")
    assert agreement.committed == ["hello", "there"]
    assert agreement.stability == 1.0
