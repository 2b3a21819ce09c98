"""API keys on every public RPC, through the gateway and on each backend directly: a
missing, malformed or wrong key is UNAUTHENTICATED, saying which, before anything else
happens; the right key reaches the servicer. Health needs no key. Configs that would
leave a server open, or unable to reach its backends, refuse to start.

The backends host no models (the key check comes before the model lookup, and the right
key's NOT_FOUND shows the call got past it), so the mesh of this module starts fast.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time

import grpc
import pytest
import yaml
from certificates import make_pair, needs_openssl
from grpc_health.v1 import health_pb2
from matrix import STREAMING
from support import gateway_config, start_server, vad_config, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime import auth
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

CALLER, GATEWAY = "caller-key", "gateway-key"
# A caller's key that test_a_key_removed_from_the_keys_files_is_refused_everywhere revokes.
REVOKED = "revoked-key"


def digests(*keys: str) -> str:
    return ",".join(f"sha256:{hashlib.sha256(k.encode()).hexdigest()}" for k in keys)


BACKENDS = ("vad", "stt", "tts", "conversion", "indextts")
# Which backend serves each gRPC service (the gateway serves them all, and its own).
SERVED_BY = {
    "speechmesh.vad.v1.VoiceActivity": "vad",
    "speechmesh.stt.v1.SpeechToText": "stt",
    "speechmesh.tts.v1.TextToSpeech": "tts",
    "speechmesh.tts.v1.Vocoder": "tts",
    "speechmesh.conversion.v1.SpeakerEncoder": "conversion",
    "speechmesh.conversion.v1.VoiceConversion": "conversion",
    "speechmesh.conversion.v1.AudioRestoration": "conversion",
    "speechmesh.indextts.v1.IndexTTS": "indextts",
}
LIST_MODELS = "/speechmesh.models.v1.Models/ListModels"
REFUSALS = {
    "no key": ([], "missing API key"),
    "a wrong key": ([("authorization", "Bearer not-a-key")], "invalid API key"),
    "a key without its scheme": ([("authorization", CALLER)], "malformed authorization"),
    "another scheme": ([("authorization", f"Basic {CALLER}")], "malformed authorization"),
    "an empty bearer": ([("authorization", "Bearer  ")], "malformed authorization"),
}
RIGHT_KEY = [("authorization", f"Bearer {CALLER}")]
# What the right key gets from servers without models: past the key check, the servicer
# (or the gateway's router) answers.
PAST_THE_CHECK = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """Keyed backends without models, and a keyed gateway (its own key to them). The
    caller keys are in keys files (REVOKED among them), the gateway's key in the
    environment."""
    root = tmp_path_factory.mktemp("locked")
    backend_keys, gateway_keys = root / "backend-keys", root / "gateway-keys"
    backend_keys.write_text(f"{CALLER}\n{REVOKED}\n")
    gateway_keys.write_text(f"{CALLER}\n{REVOKED}\n")
    backend_auth = {"enabled": True, "keys_file": str(backend_keys)}
    backends = {
        name: start_server(
            name,
            {
                "services": {name: {"port": 0, "models": []}},
                "auth": backend_auth,
                "drain_grace_s": 1,
            },
            root,
            env={"SPEECHMESH_API_KEYS": digests(GATEWAY)},
        )
        for name in BACKENDS
    }
    config = gateway_config(
        {n: s.address for n, s in backends.items()},
        auth={"enabled": True, "keys_file": str(gateway_keys)},
        drain_grace_s=1,
    )
    gateway = start_server(
        "gateway",
        config,
        root,
        env={"SPEECHMESH_API_KEYS": "", "SPEECHMESH_BACKEND_KEY": GATEWAY},
    )
    servers = {**backends, "gateway": gateway}
    servers["keys_files"] = (backend_keys, gateway_keys)
    yield servers
    for name, server in servers.items():
        if name != "keys_files":
            server.stop()


def call(address: str, path: str, metadata: list[tuple[str, str]]) -> grpc.StatusCode:
    """An empty request (a stream: one empty message) to `path`; the status it ends with."""
    request_streaming, response_streaming = STREAMING[path]
    with grpc.insecure_channel(address) as channel:
        try:
            if request_streaming:
                list(channel.stream_stream(path)(iter([b""]), metadata=metadata, timeout=10))
            elif response_streaming:
                list(channel.unary_stream(path)(b"", metadata=metadata, timeout=10))
            else:
                channel.unary_unary(path)(b"", metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def targets() -> list[tuple[str, str]]:
    """(server, RPC path): every public RPC through the gateway, and each backend's own."""
    found = [("gateway", path) for path in sorted(STREAMING)]
    for path in sorted(STREAMING):
        backend = SERVED_BY.get(path.split("/")[1])
        if backend:
            found.append((backend, path))
    found += [(backend, LIST_MODELS) for backend in BACKENDS]
    return found


@pytest.mark.parametrize(("server", "path"), targets(), ids=lambda v: v)
def test_every_rpc_refuses_callers_without_the_right_key(locked, server, path):
    address = locked[server].address
    for what, (metadata, reason) in REFUSALS.items():
        code, details = call(address, path, metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (what, code, details)
        assert reason in details, (what, details)
    code, details = call(address, path, RIGHT_KEY)
    assert code in PAST_THE_CHECK, (code, details)


def test_a_key_removed_from_the_keys_files_is_refused_everywhere(locked):
    """Revocation without a restart: every server reads its keys file again when it
    changes, so once REVOKED is gone from the files every RPC, through the gateway and
    on each backend, refuses it, while the other keys go on working."""
    revoked_key = [("authorization", f"Bearer {REVOKED}")]
    for server, path in targets():
        code, details = call(locked[server].address, path, revoked_key)
        assert code in PAST_THE_CHECK, (server, path, code, details)
    for keys_file in locked["keys_files"]:
        keys_file.write_text(f"# {REVOKED} revoked\n{CALLER}\n")
    gateway = locked["gateway"].address
    wait_until(lambda: call(gateway, LIST_MODELS, revoked_key)[0] != grpc.StatusCode.OK)
    time.sleep(auth.RELOAD_INTERVAL_S)  # every server has looked at its file by then
    for server, path in targets():
        code, details = call(locked[server].address, path, revoked_key)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (server, path, code, details)
        assert "invalid API key" in details, (server, path, details)
        code, details = call(locked[server].address, path, RIGHT_KEY)
        assert code in PAST_THE_CHECK, (server, path, code, details)


def test_health_needs_no_key_and_nothing_was_hurt(locked):
    for name, server in locked.items():
        if name == "keys_files":
            continue
        assert server.health() == health_pb2.HealthCheckResponse.SERVING, name
        assert server.process.poll() is None, name


# --- TLS and mutual TLS with keys -------------------------------------------------------


@needs_openssl
def test_keys_hold_over_tls_to_the_gateway_and_mutual_tls_behind_it(tmp_path):
    """A caller speaks TLS to the gateway with its key; the gateway speaks mutual TLS to
    a keyed backend with its own key. Without a key the gateway refuses the caller, and
    without a client certificate the backend refuses a direct caller even with a key."""
    ca = make_pair(tmp_path, "ca")
    server_key, server_cert = make_pair(tmp_path, "server")
    client_key, client_cert = make_pair(tmp_path, "client", ca)
    backend_tls = {
        "cert_file": str(server_cert),
        "key_file": str(server_key),
        "client_ca_file": str(ca[1]),
    }
    keys = {"SPEECHMESH_API_KEYS": digests(CALLER, GATEWAY)}
    backend = start_server(
        "vad",
        vad_config(tls=backend_tls, auth={"enabled": True}),
        tmp_path,
        env=keys,
        wait_serving=False,
    )
    config = gateway_config(
        {"vad": backend.address},
        auth={"enabled": True},
        tls={"cert_file": str(server_cert), "key_file": str(server_key)},
    )
    config["gateway"]["backend_tls"] = {
        "ca_file": str(server_cert),
        "cert_file": str(client_cert),
        "key_file": str(client_key),
    }
    gateway = start_server(
        "gateway",
        config,
        tmp_path,
        env={"SPEECHMESH_API_KEYS": digests(CALLER), "SPEECHMESH_BACKEND_KEY": GATEWAY},
        wait_serving=False,
    )
    trusting = grpc.ssl_channel_credentials(root_certificates=server_cert.read_bytes())
    request = vad_pb2.DetectRequest(
        audio=audio_pb2.Audio(
            format=audio_pb2.AudioFormat(
                encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000
            ),
            data=b"\0\0" * 1600,
        )
    )

    def detect(address: str, metadata) -> vad_pb2.DetectResponse:
        with grpc.secure_channel(address, trusting) as channel:
            return vad_pb2_grpc.VoiceActivityStub(channel).Detect(
                request, metadata=metadata, timeout=10
            )

    def routed() -> bool:
        try:
            return detect(gateway.address, RIGHT_KEY).total_samples == 1600
        except grpc.RpcError:
            return False

    try:
        wait_until(routed, timeout_s=60)
        with pytest.raises(grpc.RpcError) as raised:
            detect(gateway.address, [])
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as raised:
            detect(backend.address, RIGHT_KEY)  # a key, but no client certificate
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        gateway.stop()
        backend.stop()


# --- Configs that must not start --------------------------------------------------------


def refused_start(service: str, config: dict, env: dict[str, str]) -> str:
    """What `speechmesh serve` runs, in this process: it must fail before serving with
    one of the errors the command reports as "cannot start: ..."; their message."""
    from speechmesh.runtime.auth import AuthConfigError
    from speechmesh.runtime.config import ConfigError, parse_config
    from speechmesh.runtime.server import run_servers

    patch = pytest.MonkeyPatch()
    for name in [k for k in os.environ if k.startswith("SPEECHMESH_")]:
        patch.delenv(name)
    for name, value in env.items():
        patch.setenv(name, value)
    try:
        with pytest.raises((AuthConfigError, ConfigError, OSError)) as raised:
            serving = run_servers([service], parse_config(config), port=0)
            asyncio.run(asyncio.wait_for(serving, 30))
    finally:
        patch.undo()
    return str(raised.value)


def test_fail_closed_configs_refuse_to_start_naming_the_problem(tmp_path):
    auth = {"enabled": True}
    vad = {"services": {"vad": {"port": 0, "models": []}}}
    gateway = {"services": {"gateway": {"port": 0}}, "gateway": {"backends": []}}
    cases = [
        (
            "vad",
            {**vad, "auth": {**auth, "keys_file": str(tmp_path / "absent-keys")}},
            {},
            "absent-keys",
        ),
        ("vad", {**vad, "auth": auth}, {"SPEECHMESH_API_KEYS": "sha256:abc"}, "malformed sha256"),
        ("vad", {**vad, "auth": auth}, {"SPEECHMESH_API_KEYS": " , "}, "no API key"),
        (
            "gateway",
            {**gateway, "auth": auth},
            {"SPEECHMESH_API_KEYS": digests(CALLER)},
            "SPEECHMESH_BACKEND_KEY",
        ),
        (
            "vad",
            {**vad, "tls": {"cert_file": str(tmp_path / "no.pem"), "key_file": "no.key"}},
            {},
            "tls.key_file no.key: No such file",
        ),
    ]
    for service, config, env, reason in cases:
        output = refused_start(service, config, env)
        assert reason in output, output


def test_up_with_auth_but_no_keys_exits_at_once_naming_them(tmp_path):
    """The supervisor does not keep restarting a server that refuses its config."""
    config = vad_config(auth={"enabled": True, "keys_env": "SPEECHMESH_TEST_NO_KEYS"})
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "speechmesh.cli.main", "up", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "no API key" in output and "exited while starting" in output, output
