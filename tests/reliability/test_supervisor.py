"""`speechmesh up` under operator faults: its servers never outlive it."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml
from certificates import make_pair, needs_openssl
from support import free_port, vad_config

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def running_servers(config_path) -> list[int]:
    """Live `serve` processes of this config (exited ones that wait to be reaped by
    whoever adopted them are not running)."""
    found = subprocess.run(
        ["pgrep", "-f", f"serve .* --config {config_path}"], capture_output=True, text=True
    )
    alive = []
    for pid in found.stdout.split():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            state = stat.rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state not in ("Z", "X"):
            alive.append(int(pid))
    return alive


@dataclass
class Mesh:
    """`speechmesh up` with a VAD backend and the gateway, started and SERVING."""

    process: subprocess.Popen[str]
    config_path: Path
    vad_port: int
    gateway_port: int


def start_mesh(tmp_path: Path, drain_grace_s: float, **popen: object) -> Mesh:
    vad_port, gateway_port = free_port(), free_port()
    config = vad_config(drain_grace_s=drain_grace_s)
    config["services"]["vad"]["port"] = vad_port
    config["services"]["gateway"] = {"port": gateway_port}
    config["gateway"] = {"refresh_interval_s": 0.5}
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "speechmesh.cli.main", "up", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "mesh ready" in line:
            break
    assert listening(vad_port) and listening(gateway_port), lines
    wait_until_routed(f"127.0.0.1:{gateway_port}")
    return Mesh(process, path, vad_port, gateway_port)


def wait_until_routed(gateway: str, timeout_s: float = 30) -> None:
    """Until the gateway has seen the VAD model READY (it refreshes every 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(gateway) as channel:
        stub = models_pb2_grpc.ModelsStub(channel)
        while time.monotonic() < deadline:
            listed = stub.ListModels(models_pb2.ListModelsRequest(), timeout=5)
            if any(m.state == models_pb2.MODEL_STATE_READY for m in listed.models):
                return
            time.sleep(0.2)
    raise TimeoutError(f"the gateway at {gateway} never routed to a READY model")


def test_servers_die_with_a_killed_supervisor(tmp_path):
    mesh = start_mesh(tmp_path, drain_grace_s=2)
    process, path = mesh.process, mesh.config_path
    vad_port, gateway_port = mesh.vad_port, mesh.gateway_port
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        # The children get SIGTERM from the kernel and drain (2 s grace at most).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (listening(vad_port) or listening(gateway_port)):
            time.sleep(0.2)
        assert not listening(vad_port) and not listening(gateway_port)
        while time.monotonic() < deadline and running_servers(path):
            time.sleep(0.2)
        assert running_servers(path) == []
    finally:
        if process.poll() is None:
            process.kill()
        subprocess.run(["pkill", "-9", "-f", f"--config {path}"], check=False)


def test_ctrl_c_from_a_terminal_drains_a_stream_in_flight(tmp_path):
    """A terminal's Ctrl-C goes to the whole foreground process group; a stream that is
    running through the gateway still completes, and `up` exits 0."""
    # Its own process group, as a shell gives a foreground job.
    mesh = start_mesh(tmp_path, drain_grace_s=10, start_new_session=True)
    process, gateway_port = mesh.process, mesh.gateway_port
    try:
        chunk = b"\0\0" * 1600  # 100 ms at 16 kHz
        fmt = audio_pb2.AudioFormat(
            encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
        )

        def requests():
            yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=fmt))
            for index in range(30):  # 3 s of audio over 3 s
                if index == 10:
                    os.killpg(process.pid, signal.SIGINT)
                yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=chunk))
                time.sleep(0.1)

        with grpc.insecure_channel(f"127.0.0.1:{gateway_port}") as channel:
            responses = list(
                vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(requests(), timeout=60)
            )
        assert responses and responses[-1].processed_samples == 30 * 1600
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_the_gateway_stops_before_the_backends_drain(tmp_path):
    """SIGTERM with a stream in flight: the gateway drains it (the VAD still serves) and
    stops; only then does the VAD get its SIGTERM."""
    mesh = start_mesh(tmp_path, drain_grace_s=10)
    process = mesh.process
    try:
        chunk = b"\0\0" * 1600  # 100 ms at 16 kHz
        fmt = audio_pb2.AudioFormat(
            encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
        )

        def requests():
            yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=fmt))
            for index in range(20):
                if index == 5:
                    process.send_signal(signal.SIGTERM)
                yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=chunk))
                time.sleep(0.1)

        with grpc.insecure_channel(f"127.0.0.1:{mesh.gateway_port}") as channel:
            responses = list(
                vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(requests(), timeout=60)
            )
        assert responses[-1].processed_samples == 20 * 1600
        assert process.wait(60) == 0
        lines = process.stdout.read().splitlines()
        order = [
            next(i for i, line in enumerate(lines) if needle in line)
            for needle in ("gateway draining", "gateway stopped", "vad draining", "vad stopped")
        ]
        assert order == sorted(order), "\n".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
        subprocess.run(["pkill", "-9", "-f", f"--config {mesh.config_path}"], check=False)


def test_the_restart_pause_grows_while_crashing_and_resets_after_a_healthy_run():
    """Two children under a real supervisor: one dies at once (1 s, 2 s, 4 s ... between
    starts), one dies after running past stable_run_s each time (no growth)."""
    from speechmesh.cli.supervisor import Supervisor, restart_pause
    from speechmesh.runtime.config import parse_config

    assert [restart_pause(n) for n in (0, 1, 2, 5, 9)] == [1.0, 2.0, 4.0, 30.0, 30.0]
    supervisor = Supervisor(["vad", "tts"], parse_config(vad_config()), None, "info", 1.0)
    crashing, stable = supervisor.children
    exit_after = "import sys, time; time.sleep(float(sys.argv[1])); sys.exit(3)"
    crashing.command = [sys.executable, "-c", exit_after, "0"]
    stable.command = [sys.executable, "-c", exit_after, "1.2"]
    starts: dict[str, list[float]] = {"vad": [], "tts": []}
    failures: dict[str, list[int]] = {"vad": [], "tts": []}
    for child in supervisor.children:
        original = child.start

        def start(child=child, original=original) -> None:
            starts[child.name].append(time.monotonic())
            failures[child.name].append(child.failures)
            original()

        child.start = start
        child.start()
    watcher = threading.Thread(target=supervisor._watch)
    watcher.start()
    time.sleep(6.0)
    supervisor._stop.set()
    watcher.join(5)
    supervisor._stop_all(supervisor.children)
    # Starts 1 s, then 2 s apart (the next would come 4 s later).
    assert failures["vad"] == [0, 1, 2], starts["vad"]
    crash_gaps = [b - a for a, b in itertools.pairwise(starts["vad"])]
    assert crash_gaps[0] >= 1.0 and crash_gaps[1] >= 2.0, crash_gaps
    # Each 1.2 s run forgives the crash before it: without that the pauses would grow
    # to 2 and 4 s and only two restarts would fit.
    assert len(failures["tts"]) >= 4 and set(failures["tts"][1:]) == {1}, starts["tts"]


@needs_openssl
def test_up_with_mutual_tls_waits_for_its_servers_over_tls(tmp_path):
    """The supervisor's readiness probe speaks TLS with the gateway's client certificate
    where the mesh serves mutual TLS; plaintext probes would never see it SERVING."""
    from speechmesh.cli.supervisor import Supervisor
    from speechmesh.runtime.config import parse_config

    ca = make_pair(tmp_path, "ca")
    server_key, server_cert = make_pair(tmp_path, "server")
    client_key, client_cert = make_pair(tmp_path, "client", ca)
    config = vad_config(
        tls={
            "cert_file": str(server_cert),
            "key_file": str(server_key),
            "client_ca_file": str(ca[1]),
        },
        gateway={
            "backend_tls": {
                "ca_file": str(server_cert),
                "cert_file": str(client_cert),
                "key_file": str(client_key),
            }
        },
    )
    config["services"]["vad"]["port"] = free_port()
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(config))
    supervisor = Supervisor(["vad"], parse_config(config), path, "info")
    try:
        for child in supervisor.children:
            child.start()
        assert supervisor._wait_ready()
    finally:
        supervisor._stop_all(supervisor.children)


def test_up_with_tls_and_no_way_to_reach_its_servers_is_refused(tmp_path):
    from speechmesh.cli.supervisor import Supervisor
    from speechmesh.runtime.config import ConfigError, parse_config

    config = vad_config(tls={"cert_file": str(tmp_path / "c"), "key_file": str(tmp_path / "k")})
    with pytest.raises(ConfigError, match=r"gateway\.backend_tls\.ca_file"):
        Supervisor(["vad"], parse_config(config), None, "info")
