"""Repository hygiene that CI enforces: lint, types, buf lint, fresh generated stubs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from speechmesh.runtime.registry import FAMILIES

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


# Which modules of other service packages each layer may import (prefixes). The
# gateway and the command line speak to services over gRPC only; the runtime and the
# shared networks (speechmesh/nn) are beneath every service. STT finds speech with the
# VAD package's public segmentation and serves the VAD service beside its own.
ALLOWED_SERVICE_IMPORTS = {
    "gateway": set(),
    "speechmesh/cli": set(),
    "speechmesh/runtime": set(),
    "speechmesh/nn": set(),
    "services/stt": {"speechmesh.services.vad.segmentation", "speechmesh.services.vad.service"},
}
# IndexTTS-2 is a service of one family with a contract of its own (IndexTTS/Synthesize).
SINGLE_FAMILY_SERVICES = {"indextts"}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
    return modules


def test_layers_import_only_the_services_they_may():
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
    assert {"stt", "tts", "vad", "conversion", "indextts"} <= set(services)
    rules = dict(ALLOWED_SERVICE_IMPORTS)
    for name in services:
        rules.setdefault(f"services/{name}", set())
    breaches = {}
    for folder, allowed in rules.items():
        own = "speechmesh." + folder.replace("/", ".") if folder.startswith("services/") else None
        for path in sorted((ROOT / folder).rglob("*.py")):
            foreign = {
                module
                for module in imported_modules(path)
                if module.startswith("speechmesh.services.")
                and not (own and (module == own or module.startswith(own + ".")))
                and not any(module == a or module.startswith(a + ".") for a in allowed)
            }
            if foreign:
                breaches[str(path.relative_to(ROOT))] = sorted(foreign)
    assert breaches == {}


def test_servicers_speak_only_to_task_contracts():
    """No module of a service imports a family's engine module but that family's own
    modules: servicers, streams and options work with any family of their task."""
    family_modules = {family.engine.partition(":")[0] for family in FAMILIES.values()}
    # A family with a folder of its own declares its engine in <folder>/engine.py.
    family_folders = {m.removesuffix(".engine") for m in family_modules if m.endswith(".engine")}
    breaches = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[1] in SINGLE_FAMILY_SERVICES:
            continue
        module = "speechmesh." + ".".join(relative.with_suffix("").parts)
        inside_family = any(module.startswith(folder + ".") for folder in family_folders)
        engines = {m for m in imported_modules(path) & family_modules if m != module}
        if engines and not inside_family:
            breaches[str(relative)] = sorted(engines)
    assert breaches == {}
