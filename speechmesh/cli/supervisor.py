"""`speechmesh up`: every service of the mesh as a child process, watched and restarted.

Each service runs as its own `speechmesh serve NAME` process, as it would in its own
pod: a crash or a leak in one model family never takes the others down. The
supervisor relays the children's output, waits until every one is SERVING, prints
where the mesh answers, and restarts a child that dies: with a pause that doubles
while it keeps crashing and starts afresh once it has run healthy for a while. On
Ctrl-C or SIGTERM the gateway drains and stops first (its calls in flight still reach
the backends), then the backends drain, and it exits. Children run in their own sessions (the
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

from speechmesh.runtime.config import ConfigError, MeshConfig
from speechmesh.runtime.server import client_credentials

SUPERVISOR_PID_ENV = "SPEECHMESH_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
LISTENING = re.compile(r"speechmesh (\w+) listening on ([\d.]+:\d+) \((.*)\)")
ALSO_SERVES = re.compile(r"speechmesh (\w+) also serves (\S+)")
READY_TIMEOUT_S = 600.0
MAX_BACKOFF_S = 30.0
STABLE_RUN_S = 60.0
"""A child that ran this long before it died was healthy: its back-off starts afresh."""


def restart_pause(failures: int) -> float:
    """Seconds from a child's start before it may start again, after `failures` crashes
    in a row: 1, 2, 4, ... up to MAX_BACKOFF_S."""
    return min(2.0**failures, MAX_BACKOFF_S)


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[str] | None = None
    address: str | None = None
    models: str = ""
    front_end: str | None = None
    restarts: int = 0
    failures: int = 0
    """Crashes in a row since the child last ran healthy (it sets the restart pause)."""
    started_at: float = 0.0
    exited_at: float | None = None
    listening: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.listening.clear()
        self.started_at, self.exited_at = time.monotonic(), None
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

    def restart_due(self, now: float, stable_run_s: float) -> bool:
        """Whether a dead child may start again now. The first time it is seen dead, a
        run of at least `stable_run_s` forgives the crashes before it."""
        if self.exited_at is None:
            self.exited_at = now
            if now - self.started_at >= stable_run_s:
                self.failures = 0
        return now - self.started_at >= restart_pause(self.failures)


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


@dataclass(frozen=True)
class Probe:
    """How the supervisor reaches its children's health service: plaintext, or, when the
    config serves TLS, as the gateway does (gateway.backend_tls: CA, client certificate
    for mutual TLS, the name to check)."""

    credentials: grpc.ChannelCredentials | None = None
    server_name: str | None = None

    @classmethod
    def from_config(cls, config: MeshConfig) -> Probe:
        if config.tls is None:
            return cls()
        tls = config.gateway.backend_tls
        if tls is None:
            raise ConfigError(
                "tls is set, so every server of this config serves TLS: set "
                "gateway.backend_tls.ca_file for the supervisor and the gateway to reach them"
            )
        return cls(client_credentials(tls, "gateway.backend_tls"), tls.server_name)

    def channel(self, address: str) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(address)
        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return grpc.secure_channel(address, self.credentials, options=options)


def serving(address: str, probe: Probe | None = None) -> bool:
    try:
        with (probe or Probe()).channel(address) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
    except grpc.RpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


class Supervisor:
    def __init__(
        self,
        services: list[str],
        config: MeshConfig,
        config_path: Path | None,
        log_level: str,
        stable_run_s: float = STABLE_RUN_S,
    ) -> None:
        self.config = config
        self.stable_run_s = stable_run_s
        self.probe = Probe.from_config(config)
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
                if (
                    child.listening.is_set()
                    and child.address
                    and serving(child.address, self.probe)
                ):
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
                if child.alive() or not child.restart_due(time.monotonic(), self.stable_run_s):
                    continue
                code = child.process.returncode if child.process else None
                child.restarts += 1
                child.failures += 1
                print(
                    f"speechmesh: {child.name} exited ({code}); restart #{child.restarts}",
                    file=sys.stderr,
                    flush=True,
                )
                child.start()

    def _shutdown(self) -> None:
        # The gateway first: it drains its calls in flight, which still reach backends
        # that serve as usual; only once it has stopped do the backends drain.
        gateways = [c for c in self.children if c.name == "gateway"]
        backends = [c for c in self.children if c.name != "gateway"]
        for group in (gateways, backends):
            self._stop_all(group)

    def _stop_all(self, children: list[Child]) -> None:
        """SIGTERM to each (a drain), then waits; kills what outlives the grace period."""
        for child in children:
            if child.alive():
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.drain_grace_s + 10
        for child in children:
            if child.process is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            if child.process.poll() is None:
                child.process.kill()
                child.process.wait()
            print(
                f"speechmesh: {child.name} stopped ({child.process.returncode})",
                file=sys.stderr,
                flush=True,
            )
