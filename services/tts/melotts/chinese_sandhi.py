"""Mandarin tone sandhi as MeloTTS's reference applies it (PaddleSpeech's rules): first
jieba's words are merged (不 with the next word, reduplications around 一, 一 with the
next word, repeated words, runs of third tones, 儿 with the word before), then each
word's finals (pypinyin FINALS_TONE3, neutral tone 5) change: 不 (bu2 before a fourth
tone, neutral in A不B), 一 (yi2 before a fourth tone, yi4 before others, neutral in
A一A, first tone in 第一 and numbers), neutral tones (reduplicated nouns, verbs and
adjectives, particles, 们/子, places, directional complements, the measure word 个, and
the word list of data/chinese_neutral_tone.txt) and third tones (2+3 → 2+3 in two- to
four-syllable words, split as jieba's search cut splits them).

A word's finals may be fewer than its characters (marks, letters): the rules index them
as the reference does, so they apply to Chinese words only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

WORDS_FILE = Path(__file__).parent / "data" / "chinese_neutral_tone.txt"
PARTICLES = "吧呢啊呐噻嘛吖嗨呐哦哒额滴哩哟喽啰耶喔诶"
MARKS = "：，；。？！“”‘’':,;.?!"
"""Marks after 一 that keep its first tone."""

Segment = list[list[str]]
"""jieba's cut: [word, part of speech] pairs, changed in place by the merges."""


@cache
def word_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(words read with a neutral last syllable, words never made neutral)."""
    lists: dict[str, list[str]] = {}
    current: list[str] = []
    for line in WORDS_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line:
            continue
        if line.startswith("["):
            current = lists.setdefault(line.strip("[]"), [])
        else:
            current.append(line)
    return frozenset(lists["neutral"]), frozenset(lists["never-neutral"])


def finals_of(word: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin

    return list(lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3))


def _tone(final: str, tone: str) -> str:
    return final[:-1] + tone


def _all_third(finals: list[str]) -> bool:
    return all(final[-1] == "3" for final in finals)


# The merges, before the tones change.


def _merge_bu(segment: Segment) -> Segment:
    merged, last = [], ""
    for word, pos in segment:
        if last == "不":
            word = last + word
        if word != "不":
            merged.append([word, pos])
        last = word
    if last == "不":
        merged.append([last, "d"])
    return merged


def _merge_yi(segment: Segment) -> Segment:
    """听 一 听 → 听一听, then 一 with the word after it. As the reference, the first pass
    indexes its own output by the input's position; where that fails the cut is kept."""
    merged: Segment = []
    try:
        for i, (word, pos) in enumerate(segment):
            if (
                i >= 1
                and word == "一"
                and i + 1 < len(segment)
                and segment[i - 1][0] == segment[i + 1][0]
                and segment[i - 1][1] == "v"
            ):
                merged[i - 1][0] = merged[i - 1][0] + "一" + merged[i - 1][0]
            elif i >= 2 and segment[i - 1][0] == "一" and segment[i - 2][0] == word and pos == "v":
                continue
            else:
                merged.append([word, pos])
    except IndexError:
        return segment
    joined: Segment = []
    for word, pos in merged:
        if joined and joined[-1][0] == "一":
            joined[-1][0] = joined[-1][0] + word
        else:
            joined.append([word, pos])
    return joined


def _merge_repeats(segment: Segment) -> Segment:
    merged: Segment = []
    for word, pos in segment:
        if merged and word == merged[-1][0]:
            merged[-1][0] = merged[-1][0] + word
        else:
            merged.append([word, pos])
    return merged


def _merge_third_tones(segment: Segment, whole_words: bool) -> Segment:
    """Joins a word to the one before when both are all third tones (whole_words), or
    when the one before ends and this one starts with a third tone; at most three
    characters together, never after a reduplication, never twice in a row."""
    finals = [finals_of(word) for word, _ in segment]
    merged: Segment = []
    joined_last = False
    for i, (word, pos) in enumerate(segment):
        if whole_words:
            meets = i >= 1 and _all_third(finals[i - 1]) and _all_third(finals[i])
        else:
            meets = i >= 1 and finals[i - 1][-1][-1] == "3" and finals[i][0][-1] == "3"
        before = segment[i - 1][0] if i >= 1 else ""
        if (
            meets
            and not joined_last
            and not (len(before) == 2 and before[0] == before[1])
            and len(before) + len(word) <= 3
        ):
            merged[-1][0] = merged[-1][0] + word
            joined_last = True
        else:
            merged.append([word, pos])
            joined_last = False
    return merged


def _merge_er(segment: Segment) -> Segment:
    merged: Segment = []
    for i, (word, pos) in enumerate(segment):
        if i >= 1 and word == "儿" and segment[i - 1][0] != "#":
            merged[-1][0] = merged[-1][0] + word
        else:
            merged.append([word, pos])
    return merged


def merge(cut: list[tuple[str, str]]) -> Segment:
    segment = _merge_bu([[word, pos] for word, pos in cut])
    segment = _merge_yi(segment)
    segment = _merge_repeats(segment)
    segment = _merge_third_tones(segment, whole_words=True)
    segment = _merge_third_tones(segment, whole_words=False)
    return _merge_er(segment)


# The tone changes of one word.


def _split(word: str) -> list[str]:
    """The word in two at its shortest search-cut subword (first or last)."""
    import jieba

    shortest = sorted(jieba.cut_for_search(word), key=len)[0]
    if word.find(shortest) == 0:
        return [shortest, word[len(shortest) :]]
    return [word[: -len(shortest)], shortest]


def _bu(word: str, finals: list[str]) -> list[str]:
    if len(word) == 3 and word[1] == "不":
        finals[1] = _tone(finals[1], "5")
        return finals
    for i, char in enumerate(word):
        if char == "不" and i + 1 < len(word) and finals[i + 1][-1] == "4":
            finals[i] = _tone(finals[i], "2")
    return finals


def _yi(word: str, finals: list[str]) -> list[str]:
    if "一" in word and all(char.isnumeric() for char in word if char != "一"):
        return finals
    if len(word) == 3 and word[1] == "一" and word[0] == word[-1]:
        finals[1] = _tone(finals[1], "5")
    elif word.startswith("第一"):
        finals[1] = _tone(finals[1], "1")
    else:
        for i, char in enumerate(word):
            if char == "一" and i + 1 < len(word):
                if finals[i + 1][-1] == "4":
                    finals[i] = _tone(finals[i], "2")
                elif word[i + 1] not in MARKS:
                    finals[i] = _tone(finals[i], "4")
    return finals


def _last_is_neutral(word: str, pos: str, never: frozenset[str]) -> bool:
    """The reference's chain of neutral-tone rules for the last (or 个's) syllable."""
    if word[-1] in PARTICLES or word[-1] in "的地得":
        return True
    if len(word) > 1 and word[-1] in "们子" and pos in {"r", "n"} and word not in never:
        return True
    if len(word) > 1 and word[-1] in "上下里" and pos in {"s", "l", "f"}:
        return True
    return len(word) > 1 and word[-1] in "来去" and word[-2] in "上下进出回过起开"


def _neutral(word: str, pos: str, finals: list[str]) -> list[str]:
    neutral, never = word_lists()
    for j in range(1, len(word)):
        if word[j] == word[j - 1] and pos[0] in {"n", "v", "a"} and word not in never:
            finals[j] = _tone(finals[j], "5")
    ge = word.find("个")
    if _last_is_neutral(word, pos, never):
        finals[-1] = _tone(finals[-1], "5")
    elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in "几有两半多各整每做是")) or (
        word == "个"
    ):
        finals[ge] = _tone(finals[ge], "5")
    elif word in neutral or word[-2:] in neutral:
        finals[-1] = _tone(finals[-1], "5")
    parts = _split(word)
    halves = [finals[: len(parts[0])], finals[len(parts[0]) :]]
    for part, half in zip(parts, halves, strict=True):
        if part in neutral or part[-2:] in neutral:
            half[-1] = _tone(half[-1], "5")
    return halves[0] + halves[1]


def _third(word: str, finals: list[str]) -> list[str]:
    if len(word) == 2 and _all_third(finals):
        finals[0] = _tone(finals[0], "2")
    elif len(word) == 3:
        parts = _split(word)
        if _all_third(finals):
            if len(parts[0]) == 2:
                finals[0], finals[1] = _tone(finals[0], "2"), _tone(finals[1], "2")
            elif len(parts[0]) == 1:
                finals[1] = _tone(finals[1], "2")
        else:
            halves = [finals[: len(parts[0])], finals[len(parts[0]) :]]
            for i, half in enumerate(halves):
                if _all_third(half) and len(half) == 2:
                    half[0] = _tone(half[0], "2")
                elif (
                    i == 1
                    and not _all_third(half)
                    and half[0][-1] == "3"
                    and halves[0][-1][-1] == "3"
                ):
                    halves[0][-1] = _tone(halves[0][-1], "2")
            finals = halves[0] + halves[1]
    elif len(word) == 4:
        halves = [finals[:2], finals[2:]]
        for half in halves:
            if _all_third(half):
                half[0] = _tone(half[0], "2")
        finals = halves[0] + halves[1]
    return finals


def change_tones(word: str, pos: str, finals: list[str]) -> list[str]:
    """A merged word's finals after the sandhi (a new list)."""
    finals = _bu(word, list(finals))
    finals = _yi(word, finals)
    finals = _neutral(word, pos, finals)
    return _third(word, finals)
