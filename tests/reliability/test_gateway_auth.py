"""Auth and TLS through the gateway: callers are checked at the front door, and the
gateway reaches backends that require keys (its own, or the caller's when configured)
and backends that serve TLS or mutual TLS."""

from __future__ import annotations

import hashlib

import grpc
import pytest
from certificates import make_pair, needs_openssl
from support import gateway_config, start_server, vad_config, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

CALLER_KEY = "caller-key"
GATEWAY_KEY = "gateway-key"
# Backends know both keys; the gateway's callers need only theirs. Digests only: plain
# keys need not be stored anywhere.
MESH_KEYS = ",".join(
    f"sha256:{hashlib.sha256(k.encode()).hexdigest()}" for k in (CALLER_KEY, GATEWAY_KEY)
)
S16 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
AUTH = {"enabled": True}


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def detect(address: str, metadata: list[tuple[str, str]]) -> vad_pb2.DetectResponse:
    request = vad_pb2.DetectRequest(audio=audio_pb2.Audio(format=S16, data=b"\0\0" * 1600))
    with grpc.insecure_channel(address) as channel:
        return vad_pb2_grpc.VoiceActivityStub(channel).Detect(
            request, metadata=metadata, timeout=10
        )


def routed(address: str, metadata: list[tuple[str, str]]) -> bool:
    try:
        return detect(address, metadata).total_samples == 1600
    except grpc.RpcError:
        return False


def refused_code(address: str, metadata: list[tuple[str, str]]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        detect(address, metadata)
    return raised.value.code()


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    server = start_server(
        "vad",
        vad_config(auth=AUTH),
        tmp_path_factory.mktemp("auth-vad"),
        env={"SPEECHMESH_API_KEYS": MESH_KEYS},
    )
    yield server
    server.stop()


def start_gateway(backend_address, tmp_path, env, **gateway):
    config = gateway_config({"vad": backend_address}, auth=AUTH)
    config["gateway"].update(gateway)
    return start_server("gateway", config, tmp_path, env={"SPEECHMESH_API_KEYS": MESH_KEYS, **env})


def test_callers_are_checked_and_the_gateway_uses_its_own_key(backend, tmp_path):
    gateway = start_gateway(backend.address, tmp_path, {"SPEECHMESH_BACKEND_KEY": GATEWAY_KEY})
    try:
        wait_until(lambda: routed(gateway.address, bearer(CALLER_KEY)))
        with grpc.insecure_channel(gateway.address) as channel:
            listed = models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest(), metadata=bearer(CALLER_KEY), timeout=10
            )
        assert [m.id for m in listed.models] == ["silero-vad"]
        for metadata in ([], bearer("wrong-key"), [("authorization", CALLER_KEY)]):
            assert refused_code(gateway.address, metadata) == grpc.StatusCode.UNAUTHENTICATED
        # The backend itself still refuses a caller without a key.
        assert refused_code(backend.address, []) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        gateway.stop()


def test_forwarding_lets_backends_check_each_caller(backend, tmp_path):
    # The gateway accepts one key more than its backends: a key the backends revoked.
    revoked = "revoked-key"
    gateway_keys = f"{MESH_KEYS},{revoked}"
    gateway = start_gateway(
        backend.address,
        tmp_path,
        {"SPEECHMESH_BACKEND_KEY": GATEWAY_KEY, "SPEECHMESH_API_KEYS": gateway_keys},
        forward_caller_key=True,
    )
    try:
        wait_until(lambda: routed(gateway.address, bearer(CALLER_KEY)))
        with pytest.raises(grpc.RpcError) as raised:
            detect(gateway.address, bearer(revoked))
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "API key" in raised.value.details()
    finally:
        gateway.stop()


def test_auth_without_a_gateway_key_refuses_to_start(backend, tmp_path):
    with pytest.raises(RuntimeError, match="SPEECHMESH_BACKEND_KEY"):
        start_gateway(backend.address, tmp_path, {"SPEECHMESH_BACKEND_KEY": ""})


@needs_openssl
def test_the_gateway_reaches_a_mutual_tls_backend(tmp_path):
    ca = make_pair(tmp_path, "ca")
    server_key, server_cert = make_pair(tmp_path, "server")
    client_key, client_cert = make_pair(tmp_path, "client", ca)
    tls = {"cert_file": str(server_cert), "key_file": str(server_key), "client_ca_file": str(ca[1])}
    backend = start_server("vad", vad_config(tls=tls), tmp_path, wait_serving=False)
    backend_tls = {"ca_file": str(server_cert)}
    no_cert = gateway_config({"vad": backend.address})
    no_cert["gateway"]["backend_tls"] = backend_tls
    without_cert = start_server("gateway", no_cert, tmp_path, wait_serving=False)
    with_cert = gateway_config({"vad": backend.address})
    with_cert["gateway"]["backend_tls"] = {
        **backend_tls,
        "cert_file": str(client_cert),
        "key_file": str(client_key),
    }
    gateway = start_server("gateway", with_cert, tmp_path)
    try:
        wait_until(lambda: routed(gateway.address, []))
        # Without a client certificate the backend stays out of reach.
        with pytest.raises(grpc.RpcError) as raised:
            detect(without_cert.address, [])
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, raised.value.details()
        assert "no replica can serve" in raised.value.details()
    finally:
        for server in (gateway, without_cert, backend):
            server.stop()
