"""What every parity generator shares: the upstream checkout, the fixture folder, the manifest.

A generator (scripts/parity/<family>.py) imports the upstream implementation from a
checkout outside the repository, builds tiny random weights, saves them in the official
layout, runs the reference and records its outputs here. The manifest names the upstream
commit, the package versions, every stub and patch, and each case, so that the fixtures
can be regenerated bit for bit and an independent run (other seeds, texts, clips) can be
pointed at the same tests with SPEECHMESH_PARITY_FIXTURES.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES = REPOSITORY / "tests" / "parity" / "fixtures"


def parser(family: str, description: str) -> argparse.ArgumentParser:
    """The options every generator takes; a generator may add its own."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument(
        "--upstream",
        type=Path,
        required=True,
        help="checkout of the upstream repository at the pinned commit (outside this repo)",
    )
    args.add_argument(
        "--out", type=Path, default=FIXTURES / family, help="fixture folder to (re)write"
    )
    args.add_argument("--seed", type=int, default=0, help="seed of the weights and the cases")
    return args


def upstream_commit(checkout: Path, pinned: str) -> str:
    """The checkout's commit, refused unless it is the pinned one (fixtures must reproduce)."""
    head = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not head.startswith(pinned):
        sys.exit(f"{checkout} is at {head or 'no git commit'}; the fixtures pin {pinned}")
    return head


def versions(*packages: str) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


class Fixture:
    """A fixture folder being written: arrays as .npy, documents as .json, one manifest."""

    def __init__(self, out: Path, family: str, upstream: dict[str, str], seed: int) -> None:
        self.out = out
        self.out.mkdir(parents=True, exist_ok=True)
        for old in self.out.rglob("*"):
            if old.is_file():
                old.unlink()
        self.manifest: dict[str, Any] = {
            "family": family,
            "upstream": upstream,
            "seed": seed,
            "versions": {},
            "stubs": [],
            "patches": [],
            "cases": [],
        }

    def path(self, name: str) -> Path:
        target = self.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def array(self, name: str, value: Any) -> str:
        """Saves a tensor or array (float64 kept as float64, so no precision is lost)."""
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        np.save(self.path(f"{name}.npy"), np.ascontiguousarray(value), allow_pickle=False)
        return f"{name}.npy"

    def document(self, name: str, value: Any) -> str:
        self.path(f"{name}.json").write_text(json.dumps(value, indent=1, ensure_ascii=False))
        return f"{name}.json"

    def stub(self, what: str) -> None:
        """Records a module the reference imports that was replaced, and why."""
        self.manifest["stubs"].append(what)

    def patch(self, what: str) -> None:
        """Records a change made to the reference at run time, and why."""
        self.manifest["patches"].append(what)

    def case(self, **fields: Any) -> None:
        self.manifest["cases"].append(fields)

    def finish(self, *packages: str) -> None:
        self.manifest["versions"] = versions(*packages)
        self.manifest["files"] = {
            str(p.relative_to(self.out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.out.rglob("*"))
            if p.is_file() and p.name != "manifest.json"
        }
        (self.out / "manifest.json").write_text(json.dumps(self.manifest, indent=1) + "\n")
        size = sum(p.stat().st_size for p in self.out.rglob("*") if p.is_file())
        print(f"wrote {len(self.manifest['cases'])} cases, {size / 1024:.0f} KiB to {self.out}")


def add_cases(args: argparse.ArgumentParser, what: str) -> None:
    """--cases FILE: a JSON object replacing some of the generator's cases (`what` names
    the keys it takes), for an independent run; without it the committed fixtures' cases."""
    args.add_argument(
        "--cases",
        type=Path,
        help=f"JSON object replacing the generator's cases (an independent run): {what}",
    )


def load_cases(path: Path | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """The generator's cases: `defaults`, with each key the --cases file gives replaced
    (a key the generator does not take is refused, so a misspelt one is not ignored)."""
    if path is None:
        return dict(defaults)
    given = json.loads(path.read_text(encoding="utf-8"))
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        sys.exit(f"{path}: unknown keys {unknown}; the generator takes {sorted(defaults)}")
    return {**defaults, **given}


def record_cases(fixture: Fixture, path: Path | None) -> None:
    """Names the --cases file in the manifest (its digest and the keys it replaced); the
    manifest's cases list every case as run either way."""
    if path is None:
        return
    given = json.loads(path.read_text(encoding="utf-8"))
    fixture.manifest["cases_given"] = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "replaced": sorted(given),
    }
