"""What the benchmarks share: real `speechmesh serve` processes, their ports and CPU time."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(
    service: str,
    config: dict,
    *,
    ready_timeout_s: float = 300.0,
    pythonpath: str | None = None,
) -> tuple[subprocess.Popen[str], str]:
    """`speechmesh serve SERVICE` on a free port with `config`, once it is SERVING.

    `pythonpath`: another checkout to run the service from (a before/after comparison
    in one run); by default the one this process imports.
    """
    path = Path(tempfile.mkdtemp()) / f"{service}.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "speechmesh.cli.main", "serve", service, "--config"]
    process = subprocess.Popen(
        [*command, str(path), "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if pythonpath is None else {**os.environ, "PYTHONPATH": pythonpath},
    )
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(r"listening on ([\d.]+:\d+)", line)
        if match:
            wait_serving(match.group(1), ready_timeout_s)
            return process, match.group(1)
    raise RuntimeError(f"{service} did not start")


def wait_serving(address: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
            time.sleep(0.1)
    raise TimeoutError(f"{address} never became SERVING")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(60)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
