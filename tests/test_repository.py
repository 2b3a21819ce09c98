"""Repository hygiene that CI enforces: lint, types, buf lint, fresh generated stubs."""

from __future__ import annotations

import ast
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


# Which service packages each layer may import. The gateway and the command line speak
# to services over gRPC only; the runtime is beneath every service. STT segments its
# streams with the VAD service's segmentation until that lives in a module of its own.
ALLOWED_SERVICE_IMPORTS = {
    "gateway": set(),
    "speechmesh/cli": set(),
    "speechmesh/runtime": set(),
    "services/stt": {"stt", "vad"},
}


def service_imports(folder: Path) -> dict[str, set[str]]:
    """The `speechmesh.services.<name>` packages each file under `folder` imports."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            names |= {m.split(".")[2] for m in modules if m.startswith("speechmesh.services.")}
        if names:
            found[str(path.relative_to(ROOT))] = names
    return found


def test_layers_import_only_the_services_they_may():
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
    assert {"stt", "tts", "vad", "conversion", "indextts"} <= set(services)
    rules = dict(ALLOWED_SERVICE_IMPORTS)
    for name in services:
        rules.setdefault(f"services/{name}", {name})
    breaches = {
        path: sorted(imported - allowed)
        for folder, allowed in rules.items()
        for path, imported in service_imports(ROOT / folder).items()
        if imported - allowed
    }
    assert breaches == {}
