"""Generates the Python gRPC stubs (and .pyi type stubs) from protos/ into speechmesh/.

One command, `make protos`; `--check` regenerates into a scratch folder and fails
when the committed stubs differ, which is how CI catches stale stubs.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out_dir: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    # The mypy plugins live beside this interpreter, which need not be on PATH.
    bin_dir = Path(sys.executable).parent
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    subprocess.run(cmd, check=True, cwd=PROTO_ROOT)
    for proto in protos:
        package_dir = out_dir / Path(proto).parent
        for parent in [package_dir, *package_dir.relative_to(out_dir).parents]:
            init = out_dir / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.write_text("")


def generated_files(root: Path) -> set[Path]:
    base = root / "speechmesh"
    return {p.relative_to(root) for p in base.rglob("*") if p.name.endswith(GENERATED_SUFFIXES)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        generate(scratch_dir)
        fresh, committed = generated_files(scratch_dir), generated_files(OUT_ROOT)
        stale = sorted(
            str(p)
            for p in fresh | committed
            if p not in fresh
            or p not in committed
            or not filecmp.cmp(scratch_dir / p, OUT_ROOT / p, shallow=False)
        )
        if not args.check:
            # Generated into scratch first, so a failing protoc leaves the tree as it was.
            for path in committed - fresh:
                (OUT_ROOT / path).unlink()
            for path in fresh:
                (OUT_ROOT / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(scratch_dir / path, OUT_ROOT / path)
                for package in (OUT_ROOT / path).relative_to(OUT_ROOT).parents[:-1]:
                    (OUT_ROOT / package / "__init__.py").touch()
            print(f"generated {len(fresh)} files ({len(stale)} changed)")
            return 0
    if stale:
        print("stale generated stubs (run `make protos`):", *stale, sep="\n  ")
        return 1
    print("generated stubs are fresh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
