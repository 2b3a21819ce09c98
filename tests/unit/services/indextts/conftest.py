"""A tiny random IndexTTS-2 checkpoint shared by the IndexTTS-2 unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from indextts_checkpoint import write_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("indextts") / "IndexTTS-2"
    write_checkpoint(folder)
    return folder
