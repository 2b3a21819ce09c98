"""docs/deploy.md walked through as written, without a cluster or a Docker daemon.

The page's `sh` blocks run in order, in one bash with `set -euo pipefail`, in a copy of
the repository where the page's `yaml` blocks that name a k8s/ path are written. kubectl
and docker are the real programs pointed at closed ports on 127.0.0.1: a command gets
as far as the network only when its subcommand, flags and arguments (and, for `apply
-k`, the kustomization it renders) are right. `speechmesh` command lines are parsed by
the real CLI without running. Every other program the page uses runs for real.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_support import KUBECTL, ROOT, copy_k8s, mesh_configs, of_kind, render
from support import free_port

from speechmesh.runtime.auth import ApiKeyVerifier, load_key_digests
from speechmesh.runtime.config import AuthConfig
from speechmesh.runtime.errors import Unauthenticated

PAGE = ROOT / "docs" / "deploy.md"
DOCKER = shutil.which("docker")
REGISTRY = "registry.example.com/speech"
FILE_MARK = re.compile(r"^# (k8s/\S+)$")
SHIM = """\
#!{python}
import json, os, subprocess, sys
sys.path.insert(0, {support!r})
tool, real, args = {tool!r}, {real!r}, sys.argv[1:]
if tool == "speechmesh":
    from deploy_support import parse_cli
    try:
        parse_cli(args)
        code, output = 0, ""
    except Exception as error:
        code, output = 2, getattr(error, "format_message", lambda: str(error))()
elif real is None:
    code, output = None, "not installed"
else:
    run = subprocess.run([real, *args], capture_output=True, text=True, timeout=120)
    code, output = run.returncode, run.stdout + run.stderr
    sys.stdout.write(run.stdout)
with open(os.environ["WALKTHROUGH_LOG"], "a") as log:
    log.write(json.dumps({{"tool": tool, "args": args, "code": code, "output": output}}) + "\\n")
"""


@dataclass
class Walkthrough:
    result: subprocess.CompletedProcess[str]
    calls: list[dict[str, Any]]
    work: Path
    port: int

    def of(self, tool: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["tool"] == tool]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def written_files() -> dict[str, str]:
    """The page's yaml blocks that say which file under k8s/ they are."""
    files = {}
    for body in blocks("yaml"):
        mark = FILE_MARK.match(body.splitlines()[0])
        if mark:
            files[mark[1]] = body
    return files


# The module renders (or walks through) once: keep its tests on one worker.
pytestmark = pytest.mark.xdist_group("deploy-docs")


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Walkthrough:
    work = tmp_path_factory.mktemp("walkthrough")
    for entry in ROOT.iterdir():
        if entry.name not in {"k8s", ".git", ".venv"}:
            (work / entry.name).symlink_to(entry)
    copy_k8s(work)
    for path, body in written_files().items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(body)
    port = free_port()  # nothing listens there: the API server and the Docker daemon
    shims = work.parent / f"{work.name}-bin"
    shims.mkdir()
    for tool, real in (("kubectl", str(KUBECTL)), ("docker", DOCKER), ("speechmesh", None)):
        shim = shims / tool
        shim.write_text(
            SHIM.format(
                python=sys.executable,
                support=str(Path(__file__).parent),
                tool=tool,
                real=real,
            )
        )
        shim.chmod(0o755)
    kubeconfig = work.parent / f"{work.name}-kubeconfig"
    kubeconfig.write_text(
        textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        clusters: [{{name: closed, cluster: {{server: "https://127.0.0.1:{port}"}}}}]
        users: [{{name: nobody, user: {{token: none}}}}]
        contexts: [{{name: closed, context: {{cluster: closed, user: nobody}}}}]
        current-context: closed
        """)
    )
    log = work.parent / f"{work.name}-calls.jsonl"
    home = work.parent / f"{work.name}-home"
    home.mkdir()
    env = {
        **os.environ,
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig),
        "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
        "DOCKER_CONFIG": str(home / ".docker"),
        "HF_TOKEN": "hf_walkthrough",
        "WALKTHROUGH_LOG": str(log),
    }
    script = "\n".join(blocks("sh"))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Walkthrough(result, calls, work, port)


def test_the_page_runs_to_its_end(walkthrough):
    assert walkthrough.result.returncode == 0, walkthrough.result.stderr[-3000:]
    assert len(walkthrough.calls) >= 30


def reached_the_cluster(call: dict[str, Any], port: int) -> bool:
    return call["code"] == 0 or (
        f"127.0.0.1:{port}" in call["output"] and "refused" in call["output"]
    )


def test_kubectl_commands_are_right_up_to_the_cluster(walkthrough):
    wrong = [
        f"kubectl {' '.join(call['args'])}: {call['output'][-500:]}"
        for call in walkthrough.of("kubectl")
        if not reached_the_cluster(call, walkthrough.port)
    ]
    assert not wrong, "\n".join(wrong)


KINDS = {"deployment": "Deployment", "svc": "Service", "hpa": "HorizontalPodAutoscaler"}


def test_kubectl_commands_name_objects_the_overlays_create(walkthrough):
    manifests = render(walkthrough.work / "k8s" / "overlays" / "production")
    namespaces = {m["metadata"].get("namespace") for m in manifests} - {None}
    for call in walkthrough.of("kubectl"):
        args = call["args"]
        if "-n" in args:
            assert args[args.index("-n") + 1] in namespaces, args
        for index, arg in enumerate(args):
            kind, _, name = arg.partition("/")
            if not name and kind in KINDS and index + 1 < len(args):
                name = args[index + 1]
                if name.startswith("-"):
                    continue  # `get hpa -w`: every object of the kind
            if kind in KINDS and name:
                assert name in of_kind(manifests, KINDS[kind]), (args, name)


def test_the_page_builds_pushes_applies_scales_and_watches(walkthrough):
    docker = [call["args"] for call in walkthrough.of("docker")]
    builds = {}
    for args in docker:
        if args[0] == "build":
            dockerfile = args[args.index("-f") + 1]
            service = args[args.index("--build-arg") + 1].removeprefix("SERVICE=")
            builds[args[args.index("-t") + 1]] = (dockerfile, service)
    pushed = {args[1] for args in docker if args[0] == "push"}
    assert pushed == set(builds)
    cpu_configs = mesh_configs(render(walkthrough.work / "k8s" / "overlays" / "cpu"))
    deployed = {name for config in cpu_configs.values() for name in config.services}
    assert {s for f, s in builds.values() if f == "docker/cpu.Dockerfile"} == deployed
    gpu = mesh_configs(render(walkthrough.work / "k8s" / "overlays" / "nvidia"))["backends.yaml"]
    on_gpu = {n for n, s in gpu.services.items() if any(m.device != "cpu" for m in s.models)}
    assert {s for f, s in builds.values() if f == "docker/nvidia.Dockerfile"} == on_gpu
    kubectl = [" ".join(call["args"]) for call in walkthrough.of("kubectl")]
    applied = [line.removeprefix("apply -k ") for line in kubectl if line.startswith("apply -k ")]
    assert applied == [
        "k8s/overlays/production",
        "k8s/overlays/production-gpu",
        "k8s/overlays/shared-weights",
    ]
    # What the applied overlays run is what the page built and pushed.
    for overlay in applied:
        for deployment in of_kind(render(walkthrough.work / overlay), "Deployment").values():
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                assert container["image"] in pushed, (overlay, container["image"])
                assert container["image"].startswith(f"{REGISTRY}/")
    assert any("patch hpa" in line for line in kubectl)
    assert any("scale deployment/" in line for line in kubectl)
    assert any("rollout status" in line for line in kubectl)
    assert any(line.endswith("get pods -w") for line in kubectl)


def test_the_hpa_patch_it_shows_is_a_valid_autoscaler(walkthrough):
    manifests = render(walkthrough.work / "k8s" / "overlays" / "production")
    (patch_call,) = [c["args"] for c in walkthrough.of("kubectl") if "patch" in c["args"]]
    name = patch_call[patch_call.index("hpa") + 1]
    patch = json.loads(patch_call[patch_call.index("-p") + 1])
    hpa = of_kind(manifests, "HorizontalPodAutoscaler")[name]
    hpa["spec"].update(patch["spec"])
    kubernetes_validate.validate(hpa, "1.30.0", strict=True)
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.skipif(DOCKER is None, reason="no docker client on this machine")
def test_docker_commands_are_right_up_to_the_daemon(walkthrough):
    wrong = [
        f"docker {' '.join(call['args'])}: {call['output'][-500:]}"
        for call in walkthrough.of("docker")
        if call["code"] != 0 and "Cannot connect to the Docker daemon" not in call["output"]
    ]
    assert walkthrough.of("docker") and not wrong, "\n".join(wrong)


def test_speechmesh_commands_parse(walkthrough):
    calls = walkthrough.of("speechmesh")
    assert calls
    for call in calls:
        assert call["code"] == 0, (call["args"], call["output"])


def test_the_key_file_it_writes_is_what_the_gateway_accepts(walkthrough):
    (key,) = re.findall(r"^the clients' API key: (\S+)$", walkthrough.result.stdout, re.M)
    keys_file = walkthrough.work / "api-keys"
    assert keys_file.read_text().startswith("sha256:"), "only a digest is stored"
    verifier = ApiKeyVerifier(load_key_digests(AuthConfig(enabled=True, keys_file=keys_file), {}))
    verifier.verify(f"Bearer {key}")
    with pytest.raises(Unauthenticated):
        verifier.verify(f"Bearer {key}x")


def test_the_overlays_it_writes_render_and_validate(walkthrough):
    overlays = {Path(path).parent for path in written_files()}
    assert {o.name for o in overlays} == {
        "production",
        "production-gpu",
        "production-http",
        "shared-weights",
    }
    for overlay in overlays:
        for manifest in render(walkthrough.work / overlay):
            for version in ("1.30.0", "1.37.0"):
                kubernetes_validate.validate(manifest, version, strict=True)
    rendered = yaml.safe_load_all((walkthrough.work / "rendered.yaml").read_text())
    assert {m["kind"] for m in rendered} >= {"Deployment", "Service", "NetworkPolicy"}
    shared = render(walkthrough.work / "k8s" / "overlays" / "shared-weights")
    (claim,) = of_kind(shared, "PersistentVolumeClaim").values()
    volumes = of_kind(shared, "Deployment")["indextts"]["spec"]["template"]["spec"]["volumes"]
    weights = {v["name"]: v for v in volumes}["weights"]
    assert weights == {
        "name": "weights",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }


def test_the_adapter_rule_serves_the_metric_the_autoscalers_ask_for(walkthrough):
    (rules,) = [yaml.safe_load(b) for b in blocks("yaml") if b.startswith("# prometheus-adapter")]
    (rule,) = rules
    assert rule["seriesQuery"].startswith("speechmesh_batch_queue_depth{")
    overlay = walkthrough.work / "k8s" / "overlays" / "production-gpu"
    for name, hpa in of_kind(render(overlay), "HorizontalPodAutoscaler").items():
        metrics = [
            m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"
        ]
        assert metrics == ([] if name == "gateway" else [rule["name"]["as"]]), name
