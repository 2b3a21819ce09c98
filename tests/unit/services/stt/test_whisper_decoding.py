"""Pieces of the faster-whisper engine that do not need the model."""

from __future__ import annotations

import pytest

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.stt.whisper import (
    SIZE_TAGS,
    compression_ratio,
    compute_type,
    resolve_model,
    split_by_timestamps,
)

BEGIN = 50364  # <|0.00|> in the whisper vocabulary


def stamp(seconds: float) -> int:
    return BEGIN + round(seconds / 0.02)


def test_timestamp_pairs_close_segments():
    tokens = [stamp(0), 1, 2, stamp(1.2), stamp(1.2), 3, stamp(2.5)]
    assert split_by_timestamps(tokens, BEGIN, 3.0) == [
        (0.0, 1.2, [stamp(0), 1, 2, stamp(1.2)]),
        (1.2, 2.5, [stamp(1.2), 3, stamp(2.5)]),
    ]


def test_an_unfinished_segment_ends_with_the_audio():
    tokens = [stamp(0.4), 1, 2]
    assert split_by_timestamps(tokens, BEGIN, 2.0) == [(0.4, 2.0, tokens)]


def test_timestamps_without_text_make_no_segment():
    assert split_by_timestamps([stamp(0), stamp(0.5)], BEGIN, 1.0) == []


def test_repetitive_text_compresses_well():
    assert compression_ratio("the cat " * 40) > 2.4
    assert compression_ratio("A large rainbow appeared in the sky.") < 1.5


def test_compute_type_follows_the_device_when_auto():
    assert compute_type("cpu", "auto") == "int8"
    assert compute_type("cuda", "auto") == "float16"
    assert compute_type("cpu", "float32") == "float32"


def test_size_tags_resolve_through_the_hub_resolver(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FailedPrecondition) as raised:
        resolve_model("large-v3")
    assert SIZE_TAGS["large-v3"] in str(raised.value)
    assert {"tiny.en", "large-v3", "large-v3-turbo", "distil-large-v3"} <= set(SIZE_TAGS)


def test_a_local_directory_needs_the_model_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FailedPrecondition) as raised:
        resolve_model(str(tmp_path))
    assert "model.bin" in str(raised.value)
