"""`speechmesh up`: every service of the mesh as a child process, watched and restarted.

Each service runs as its own `speechmesh serve NAME` process, as it would in its own
pod: a crash or a leak in one model family never takes the others down. The
supervisor relays the children's output, waits until every one is SERVING, prints
where the mesh answers, restarts a child that dies (with a growing pause), and on
Ctrl-C or SIGTERM drains all of them and exits. Children run in their own sessions (the
terminal's Ctrl-C reaches the supervisor alone) and die with it, even when it is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from speechmesh.runtime.config import MeshConfig

SUPERVISOR_PID_ENV = "SPEECHMESH_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
LISTENING = re.compile(r"speechmesh (\w+) listening on ([\d.]+:\d+) \((.*)\)")
ALSO_SERVES = re.compile(r"speechmesh (\w+) also serves (\S+)")
READY_TIMEOUT_S = 600.0
MAX_BACKOFF_S = 30.0


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[str] | None = None
    address: str | None = None
    models: str = ""
    front_end: str | None = None
    restarts: int = 0
    started_at: float = 0.0
    listening: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.listening.clear()
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Out of the terminal's process group: Ctrl-C reaches the supervisor only,
            # which drains the children with one SIGTERM each (a second signal would
            # make a child cancel its calls).
            start_new_session=True,
            env={**os.environ, SUPERVISOR_PID_ENV: str(os.getpid())},
        )
        threading.Thread(target=self._relay, args=(self.process,), daemon=True).start()

    def _relay(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = LISTENING.search(line)
            if match:
                self.address, self.models = match.group(2), match.group(3)
                self.listening.set()
            also = ALSO_SERVES.search(line)
            if also:
                self.front_end = also.group(2)
            sys.stdout.write(line)
            sys.stdout.flush()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def die_with_supervisor() -> None:
    """In a child of `speechmesh up`: SIGTERM (a drain) when the supervisor dies, even by
    kill -9, so no server is left holding its port. Linux's parent-death signal where
    there is one; elsewhere a thread that watches the parent."""
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    if not expected:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        watched_by_kernel = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):
        watched_by_kernel = False
    if os.getppid() != int(expected):  # the supervisor died before the signal was set
        os.kill(os.getpid(), signal.SIGTERM)
    elif not watched_by_kernel:
        threading.Thread(target=_watch_parent, args=(int(expected),), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
    except grpc.RpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


class Supervisor:
    def __init__(
        self, services: list[str], config: MeshConfig, config_path: Path | None, log_level: str
    ) -> None:
        self.config = config
        # Backends first, the gateway last: it is ready as soon as they are.
        ordered = sorted(services, key=lambda name: name == "gateway")
        self.children = [
            Child(name, self._command(name, config_path, log_level)) for name in ordered
        ]
        self._stop = threading.Event()

    @staticmethod
    def _command(name: str, config_path: Path | None, log_level: str) -> list[str]:
        command = [sys.executable, "-m", "speechmesh.cli.main", "serve", name]
        if config_path is not None:
            command += ["--config", str(config_path)]
        return [*command, "--log-level", log_level]

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())
        for child in self.children:
            child.start()
        try:
            if not self._wait_ready():
                return 1
            self._announce()
            self._watch()
        finally:
            self._shutdown()
        return 0

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = list(self.children)
        while pending and not self._stop.is_set():
            for child in list(pending):
                if not child.alive():
                    print(f"speechmesh: {child.name} exited while starting", file=sys.stderr)
                    return False
                if child.listening.is_set() and child.address and serving(child.address):
                    pending.remove(child)
            if time.monotonic() > deadline:
                names = ", ".join(c.name for c in pending)
                print(f"speechmesh: not SERVING after {READY_TIMEOUT_S:.0f} s: {names}")
                return False
            self._stop.wait(0.2)
        return not self._stop.is_set()

    def _announce(self) -> None:
        gateway = next((c for c in self.children if c.name == "gateway"), None)
        if gateway is not None:
            print(f"speechmesh mesh ready: gateway on {gateway.address}", flush=True)
            if gateway.front_end:
                print(f"  {'http':<10} {gateway.front_end}  (OpenAI-compatible)", flush=True)
        for child in self.children:
            if child.name != "gateway":
                print(f"  {child.name:<10} {child.address}  {child.models}", flush=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for child in self.children:
                if child.alive():
                    continue
                code = child.process.returncode if child.process else None
                pause = min(2.0**child.restarts, MAX_BACKOFF_S)
                if time.monotonic() - child.started_at < pause:
                    continue
                child.restarts += 1
                print(
                    f"speechmesh: {child.name} exited ({code}); restart #{child.restarts}",
                    file=sys.stderr,
                    flush=True,
                )
                child.start()

    def _shutdown(self) -> None:
        # The gateway first, so no new calls reach backends that are draining.
        for child in reversed(self.children):
            if child.alive():
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.drain_grace_s + 10
        for child in self.children:
            if child.process is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            if child.process.poll() is None:
                child.process.kill()
                child.process.wait()
