"""The `speechmesh` command against real servers: serve/up, the vad client, models list."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import soundfile as sf
import yaml
from support import LISTENING, free_port, speech_in_silence, vad_config

CLI = [sys.executable, "-m", "speechmesh.cli.main"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_vad_command_prints_the_segments_as_json(vad_server, tmp_path):
    clip = speech_in_silence([1.0, 1.4, 0.7])
    wav = tmp_path / "speech.wav"
    sf.write(wav, clip.audio, clip.rate, subtype="PCM_16")
    result = cli(
        "vad",
        str(wav),
        "--json",
        "--address",
        vad_server.address,
        "--min-silence-ms",
        "300",
        "--speech-pad-ms",
        "0",
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["model"] == "silero-vad"
    assert len(response["segments"]) == 2
    for segment, (start, _) in zip(response["segments"], clip.truth, strict=True):
        assert abs(int(segment["startSample"]) - start) / clip.rate <= 0.1
    table = cli("vad", str(wav), "--address", vad_server.address)
    assert "2 speech segment(s)" in table.stdout


def test_vad_command_reports_the_status_of_a_failed_call(vad_server, tmp_path):
    raw = tmp_path / "noise.pcm"
    raw.write_bytes(b"\0\0" * 8000)
    result = cli(
        "vad", str(raw), "--rate", "16000", "--threshold", "2", "--address", vad_server.address
    )
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "options.threshold" in result.stderr
    unknown = tmp_path / "sound.xyz"
    unknown.write_bytes(b"x")
    result = cli("vad", str(unknown), "--address", vad_server.address)
    assert result.returncode != 0 and "unknown audio file type" in result.stderr


def test_models_list(vad_server):
    result = cli("models", "list", "--json", "--address", vad_server.address)
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["id"] == "silero-vad" and model["state"] == "MODEL_STATE_READY"


def test_up_runs_the_services_as_children_restarts_them_and_stops_on_ctrl_c(tmp_path):
    vad_port, gateway_port, http_port = free_port(), free_port(), free_port()
    config = vad_config(drain_grace_s=5)
    config["services"]["vad"]["port"] = vad_port
    config["services"]["gateway"] = {"port": gateway_port}
    config["gateway"] = {"refresh_interval_s": 0.5, "http": {"enabled": True, "port": http_port}}
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [*CLI, "up", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "mesh ready" in line:
                break
        assert f"gateway on 127.0.0.1:{gateway_port}" in lines[-1], lines
        assert any(LISTENING.search(line) and "vad" in line for line in lines)
        http = f"http://127.0.0.1:{http_port}"
        assert http in process.stdout.readline()  # announced with the gateway
        assert httpx.get(f"{http}/health").json() == {"status": "SERVING"}
        gateway = f"127.0.0.1:{gateway_port}"
        listed = cli("models", "list", "--json", "--address", gateway)
        assert "silero-vad" in listed.stdout, listed.stderr
        # A child killed outright comes back, and the gateway serves it again.
        child = subprocess.run(
            ["pgrep", "-f", f"serve vad --config {path}"], capture_output=True, text=True
        )
        os.kill(int(child.stdout.split()[0]), signal.SIGKILL)
        for line in process.stdout:
            lines.append(line)
            if "restart #1" in line:
                break
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = cli("models", "list", "--json", "--address", gateway)
            if "MODEL_STATE_READY" in listed.stdout:
                break
            time.sleep(0.5)
        assert "MODEL_STATE_READY" in listed.stdout
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_refuses_a_bad_config_naming_the_field(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "vad": {
                        "port": 0,
                        "models": [{"id": "v", "family": "silero-vad", "max_batch_size": 0}],
                    }
                }
            }
        )
    )
    result = cli("serve", "vad", "--config", str(config))
    assert result.returncode == 2
    assert "services.vad.models[0].max_batch_size" in result.stdout + result.stderr


def test_serve_refuses_an_unknown_model_family(tmp_path):
    config = tmp_path / "family.yaml"
    config.write_text(
        yaml.safe_dump(
            {"services": {"vad": {"port": 0, "models": [{"id": "v", "family": "no-such-family"}]}}}
        )
    )
    result = cli("serve", "vad", "--config", str(config))
    assert result.returncode == 2
    assert "unknown model family 'no-such-family'" in result.stdout + result.stderr


def test_serve_refuses_a_family_of_another_service(tmp_path):
    """A TTS server given a restoration model would list it READY and answer every call
    NOT_FOUND: it is refused at start, naming the family, its service and the server."""
    config = tmp_path / "foreign.yaml"
    models = [{"id": "rnnoise", "family": "rnnoise"}]
    config.write_text(yaml.safe_dump({"services": {"tts": {"port": 0, "models": models}}}))
    result = cli("serve", "tts", "--config", str(config))
    output = " ".join((result.stdout + result.stderr).split())  # the console wraps lines
    assert result.returncode == 2, output
    assert "family 'rnnoise' is served by speechmesh.conversion.v1.AudioRestoration" in output
    assert "which the tts server does not serve" in output


def test_models_pull_finds_cached_weights_and_explains_missing_ones(tmp_path):
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--acme--tiny-vad"
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "snapshots" / revision / "model.onnx").write_bytes(b"onnx")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "COLUMNS": "400"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "models", "pull", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )

    cached = run("acme/tiny-vad")
    assert cached.returncode == 0, cached.stdout + cached.stderr
    assert str(repo / "snapshots" / revision) in cached.stdout
    embedded = run("silero-vad")
    assert embedded.returncode == 0 and "embedded in its wheel" in embedded.stdout
    missing = run("acme/absent")
    assert missing.returncode == 1
    assert "acme/absent" in missing.stderr and "not in the cache" in missing.stderr


def test_vad_command_streams_a_file_and_prints_events_as_json_lines(vad_server, tmp_path):
    clip = speech_in_silence([0.8, 1.2, 0.6])
    wav = tmp_path / "speech.wav"
    sf.write(wav, clip.audio, clip.rate, subtype="PCM_16")
    whole = json.loads(cli("vad", str(wav), "--json", "--address", vad_server.address).stdout)
    result = cli("vad", str(wav), "--stream", "--json", "--address", vad_server.address)
    assert result.returncode == 0, result.stderr
    responses = [json.loads(line) for line in result.stdout.splitlines()]
    ends = [
        r["event"]["segment"]
        for r in responses
        if r.get("event", {}).get("type") == "SPEECH_EVENT_TYPE_END"
    ]
    assert ends == whole["segments"]
    assert responses[-1]["endOfStream"] is True
    text = cli("vad", str(wav), "--stream", "--address", vad_server.address).stdout
    assert text.count("speech start") == 2 and text.count("speech end") == 2
