"""The image builds: what each service's image installs, the Dockerfiles' shape, the
build context, and docker/install.sh run for real with pip replaced by a recorder."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from deploy_support import K8S, OVERLAYS, ROOT, mesh_configs, of_kind, pod_spec, render

DOCKER = ROOT / "docker"
DOCKERFILES = {"cpu": DOCKER / "cpu.Dockerfile", "nvidia": DOCKER / "nvidia.Dockerfile"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def service_rows() -> dict[str, tuple[list[str], list[str]]]:
    """docker/services.txt: service -> (extras, data wheels)."""
    rows = {}
    for line in (DOCKER / "services.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            service, extras, *wheels = line.split()
            rows[service] = (extras.split(","), wheels)
    return rows


def makefile_data_wheels() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    pins = " ".join(re.findall(r"^DATA_WHEELS\s*\+?:?=\s*(.*)$", text, flags=re.MULTILINE))
    return dict(pin.split("==") for pin in pins.split())


def test_every_deployed_service_has_an_image_recipe_with_known_extras():
    rows = service_rows()
    deployed = set()
    for name in OVERLAYS:
        for config in mesh_configs(render(K8S / "overlays" / name)).values():
            deployed |= set(config.services)
    assert set(rows) == deployed
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    for service, (wanted, _) in rows.items():
        assert set(wanted) <= extras, (service, set(wanted) - extras)
        assert "dev" not in wanted, "test tools stay out of the images"


def test_each_image_installs_the_extras_of_every_family_its_service_hosts():
    from speechmesh.runtime.registry import FAMILIES

    rows = service_rows()
    for family, line in FAMILIES.items():
        service = line.engine.removeprefix("speechmesh.services.").split(".")[0]
        wanted = set(line.extras.split(","))
        assert wanted <= set(rows[service][0]), (family, service, wanted - set(rows[service][0]))


def test_data_wheels_are_pinned_as_the_makefile_pins_them():
    pinned = makefile_data_wheels()
    assigned = {}
    for service, (_, wheels) in service_rows().items():
        for wheel in wheels:
            name, _, version = wheel.partition("==")
            assert version, f"{service}: {wheel} is not pinned"
            assigned[name] = version
            if name in pinned:
                assert version == pinned[name], (service, wheel, pinned[name])
    # A data wheel the Makefile installs for a service must reach that service's image.
    assert set(pinned) <= set(assigned), set(pinned) - set(assigned)


def test_the_cpu_image_takes_the_cpu_build_of_the_pinned_torch():
    pins = {
        requirement
        for requirements in PYPROJECT["project"]["optional-dependencies"].values()
        for requirement in requirements
        if requirement.startswith("torch")
    }
    assert pins == {"torch==2.13.0"}
    constraints = [
        line
        for line in (DOCKER / "cpu-constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert constraints == ["torch==2.13.0+cpu"]
    dockerfile = DOCKERFILES["cpu"].read_text()
    assert "PIP_CONSTRAINT=/src/docker/cpu-constraints.txt" in dockerfile
    assert "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


@pytest.mark.parametrize("flavour", sorted(DOCKERFILES))
def test_dockerfiles_build_in_two_stages_and_run_unprivileged(flavour):
    steps = instructions(DOCKERFILES[flavour])
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build") and ":" in stages[1]
    runtime = steps[[op for op, _ in steps].index("FROM", 1) :]
    copies = [args for op, args in runtime if op == "COPY"]
    assert copies == ["--from=build /opt/speechmesh /opt/speechmesh"], "only the virtualenv"
    users = [args for op, args in steps if op == "USER"]
    assert users == ["10001:10001"]
    for name in OVERLAYS:
        for deployment in of_kind(render(K8S / "overlays" / name), "Deployment").values():
            assert pod_spec(deployment)["securityContext"]["runAsUser"] == 10001
    assert ("ENTRYPOINT", '["speechmesh"]') in steps
    assert ("ARG", "SERVICE") in steps


def dockerignore_keeps(path: str) -> bool:
    """Whether the build context holds `path` (last matching .dockerignore pattern wins)."""
    kept = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").removeprefix("**/")
        parts = Path(path).parts
        if any(
            fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))
        ) or any(fnmatch.fnmatch(part, pattern) for part in parts):
            kept = negated
    return kept


@pytest.mark.parametrize("flavour", sorted(DOCKERFILES))
def test_the_build_context_holds_what_the_dockerfiles_copy_and_no_more(flavour):
    for op, args in instructions(DOCKERFILES[flavour]):
        if op == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists() and dockerignore_keeps(source), source
    for heavy in (".venv", ".git", "tests", "benchmarks", "speechmesh/__pycache__"):
        assert not dockerignore_keeps(heavy), heavy


def run_install(service: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """docker/install.sh SERVICE from the source tree, with a pip that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "pip.log"
    pip = bin_dir / "pip"
    pip.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    pip.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["sh", "docker/install.sh", service],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_install_script_installs_the_service_extras_then_its_data_wheels(tmp_path):
    result = run_install("stt", tmp_path)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "pip.log").read_text().splitlines()
    assert calls == ["install .[stt]", "install --no-deps silero-vad==6.2.3"]
    (tmp_path / "pip.log").unlink()
    assert run_install("gateway", tmp_path).returncode == 0
    assert (tmp_path / "pip.log").read_text().splitlines() == ["install .[gateway]"]


def test_install_script_refuses_an_unknown_service(tmp_path):
    result = run_install("nonesuch", tmp_path)
    assert result.returncode == 1
    assert "no service 'nonesuch' in docker/services.txt" in result.stderr
    assert not (tmp_path / "pip.log").exists()
