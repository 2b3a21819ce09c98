"""Drills (`make drills`, not `make test`): Ctrl-C typed in a real terminal and kill -9
of a server with calls in flight under `speechmesh up`, and a short load drill through
the gateway (benchmarks/drills.py) with its overload step."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
import yaml
from support import free_port, vad_config
from test_supervisor import wait_until_routed

from speechmesh.audio.v1 import audio_pb2
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

pytestmark = [pytest.mark.drills, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
FORMAT = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
CHUNK = b"\0\0" * 1600  # 100 ms


def mesh_config(tmp_path: Path) -> tuple[Path, int, int]:
    vad_port, gateway_port = free_port(), free_port()
    config = vad_config(drain_grace_s=10)
    config["services"]["vad"]["port"] = vad_port
    config["services"]["gateway"] = {"port": gateway_port}
    config["gateway"] = {"refresh_interval_s": 0.5}
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, vad_port, gateway_port


def stream(gateway_port: int, chunks: int, during=None) -> list:
    """A StreamingDetect of `chunks` × 100 ms through the gateway, paced at real time;
    `during(index)` runs before each chunk."""

    def requests():
        yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=FORMAT))
        for index in range(chunks):
            if during is not None:
                during(index)
            yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=CHUNK))
            time.sleep(0.1)

    with grpc.insecure_channel(f"127.0.0.1:{gateway_port}") as channel:
        stub = vad_pb2_grpc.VoiceActivityStub(channel)
        return list(stub.StreamingDetect(requests(), timeout=60))


class Terminal:
    """`speechmesh up` as the foreground job of a real pseudo-terminal."""

    def __init__(self, config_path: Path) -> None:
        command = [sys.executable, "-m", "speechmesh.cli.main", "up", "--config", str(config_path)]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: session leader, the terminal its controlling tty
            os.chdir(ROOT)
            os.execv(sys.executable, command)
        self.output = ""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # the terminal closed with its last process
                return
            if not data:
                return
            with self.lock:
                self.output += data.decode(errors="replace")

    def wait_for(self, text: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if text in self.output:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n{self.output}")

    def type_ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")  # the line discipline turns it into SIGINT

    def exit_status(self, timeout_s: float = 60) -> int | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.1)
        return None

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def serve_pids(config_path: Path, service: str) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", f"serve {service} --config {config_path}"], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def kill_leftovers(config_path: Path) -> None:
    for service in ("vad", "gateway"):
        for pid in serve_pids(config_path, service):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_typed_in_a_terminal_drains_a_stream_in_flight(tmp_path):
    path, _, gateway_port = mesh_config(tmp_path)
    terminal = Terminal(path)
    try:
        terminal.wait_for("mesh ready")
        wait_until_routed(f"127.0.0.1:{gateway_port}")

        def during(index: int) -> None:
            if index == 10:
                terminal.type_ctrl_c()

        responses = stream(gateway_port, 30, during)
        assert responses[-1].end_of_stream and responses[-1].processed_samples == 30 * 1600
        assert terminal.exit_status() == 0, terminal.output
        assert "gateway draining" in terminal.output and "vad stopped" in terminal.output
        assert "Cancelling all calls" not in terminal.output
    finally:
        terminal.kill()
        kill_leftovers(path)


def test_kill_9_of_a_backend_with_calls_in_flight_is_recovered(tmp_path):
    """The streams on the killed server fail UNAVAILABLE (nothing hangs); the supervisor
    restarts it and the gateway routes to it again."""
    path, _, gateway_port = mesh_config(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "speechmesh.cli.main", "up", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    lines: list[str] = []
    restarted = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if re.search(r"vad exited \(-9\); restart #1", line):
                restarted.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any("mesh ready" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_until_routed(f"127.0.0.1:{gateway_port}")
        (victim,) = serve_pids(path, "vad")
        errors: list[grpc.RpcError] = []

        def client() -> None:
            try:
                stream(gateway_port, 20)
            except grpc.RpcError as error:
                errors.append(error)

        clients = [threading.Thread(target=client) for _ in range(3)]
        for thread in clients:
            thread.start()
        time.sleep(1.0)  # the streams are half a second of audio in
        os.kill(victim, signal.SIGKILL)
        started = time.monotonic()
        for thread in clients:
            thread.join(70)
        assert not any(t.is_alive() for t in clients), "a stream hung"
        assert len(errors) == 3 and {e.code() for e in errors} == {grpc.StatusCode.UNAVAILABLE}
        assert restarted.wait(60), "".join(lines)
        wait_until_routed(f"127.0.0.1:{gateway_port}", timeout_s=60)
        responses = stream(gateway_port, 5)
        assert responses[-1].processed_samples == 5 * 1600
        print(f"served again {time.monotonic() - started:.1f} s after the kill")
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        kill_leftovers(path)


def test_a_short_load_drill_has_no_errors_and_the_overload_fails_fast(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import drills
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path / "drill.json"
    status = drills.main(["--minutes", "1", "--probe-s", "15", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["overload_failures"] == []
    for kind, figures in report["drill"]["kinds"].items():
        assert figures["errors"] == {}, kind
        assert figures["sessions"] > 0, kind
    assert status == 0
