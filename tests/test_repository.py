"""Repository hygiene that CI enforces: lint, types, buf lint, fresh generated stubs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "command",
    [
        (str(BIN / "ruff"), "check", "."),
        (str(BIN / "ruff"), "format", "--check", "."),
        (str(BIN / "mypy"),),
        (str(BIN / "buf"), "lint"),
        (str(BIN / "buf"), "breaking", "--against", "protos/released/served.binpb"),
        (sys.executable, "scripts/gen_protos.py", "--check"),
    ],
    ids=["ruff", "ruff-format", "mypy", "buf-lint", "buf-breaking", "stubs-fresh"],
)
def test_repository_check(command):
    result = run(*command)
    assert result.returncode == 0, result.stdout + result.stderr
