from __future__ import annotations

from pathlib import Path

import pytest

from speechmesh.services.indextts.normalizer import TextNormalizer
from speechmesh.services.indextts.text import TextFrontEnd, pre_tokenize, split_segments

pytestmark = pytest.mark.xdist_group("indextts-checkpoint")


@pytest.fixture(scope="module")
def normalize() -> TextNormalizer:
    return TextNormalizer()


def test_normalisation_and_cjk_pre_tokenisation(normalize: TextNormalizer):
    # Expected strings are what the release's TextNormalizer (6432baf) gives.
    assert normalize("你好，世界！“引号”（括号）") == "你好,世界!'引号''括号'"
    assert normalize("It's fine... really") == "It is fine… really"
    assert normalize("I have 3 apples.") == "I have three apples."
    assert normalize("今天是2024年5月1日") == "今天是二零二四年五月一日"
    assert pre_tokenize("你好世界是 hello world 的中文") == "你 好 世 界 是 HELLO WORLD 的 中 文"


def test_bpe_tokenises_with_the_trained_model(tiny_checkpoint: Path, normalize: TextNormalizer):
    front = TextFrontEnd(tiny_checkpoint / "bpe.model", normalize)
    tokens = front.tokenize("Hello world, 你好！")
    assert tokens and all(isinstance(t, str) for t in tokens)
    ids = front.ids(tokens)
    assert front.unk_id not in ids
    assert "".join(tokens).replace("▁", "") == "HELLOWORLD,你好!"


def test_segments_respect_the_limits():
    sentence = ["▁A", "▁B", "▁C", "."]
    tokens = sentence * 10  # 40 tokens, sentences of 4
    parts = split_segments(tokens, max_tokens=12)
    assert [len(p) for p in parts] == [12, 12, 12, 4]
    assert [t for p in parts for t in p] == tokens
    quick = split_segments(tokens, max_tokens=12, first_max_tokens=4)
    assert len(quick[0]) == 4 and all(len(p) <= 12 for p in quick)
    assert [t for p in quick for t in p] == tokens
    long_run = ["▁X"] * 30 + [","] + ["▁Y"] * 5
    cut = split_segments(long_run, max_tokens=10)
    assert all(len(p) <= 10 for p in cut) and [t for p in cut for t in p] == long_run
    assert split_segments([], 120) == []
