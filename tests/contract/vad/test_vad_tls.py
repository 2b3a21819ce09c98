"""TLS and mutual TLS on a real server, with certificates made by openssl for the test."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from certificates import make_pair, needs_openssl
from support import start_server, vad_config

from speechmesh.models.v1 import models_pb2, models_pb2_grpc

pytestmark = needs_openssl


def list_models(address: str, credentials: grpc.ChannelCredentials | None) -> int:
    channel = (
        grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    )
    with channel:
        reply = models_pb2_grpc.ModelsStub(channel).ListModels(
            models_pb2.ListModelsRequest(), timeout=5
        )
    return len(reply.models)


def test_tls_serves_trusting_clients_only(tmp_path):
    key, cert = make_pair(tmp_path, "server")
    tls = {"cert_file": str(cert), "key_file": str(key)}
    server = start_server("vad", vad_config(tls=tls), tmp_path, wait_serving=False)
    try:
        trusted = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        assert list_models(server.address, trusted) == 1
        with pytest.raises(grpc.RpcError) as raised:
            list_models(server.address, None)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "speechmesh.cli.main",
                "models",
                "list",
                "--json",
                "--address",
                server.address,
                "--ca-file",
                str(cert),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert '"silero-vad"' in cli.stdout
    finally:
        server.stop()


def test_mutual_tls_requires_a_client_certificate(tmp_path):
    ca = make_pair(tmp_path, "ca")
    server_key, server_cert = make_pair(tmp_path, "server")
    client_key, client_cert = make_pair(tmp_path, "client", ca)
    tls = {"cert_file": str(server_cert), "key_file": str(server_key), "client_ca_file": str(ca[1])}
    server = start_server("vad", vad_config(tls=tls), tmp_path, wait_serving=False)
    try:
        roots = server_cert.read_bytes()
        with pytest.raises(grpc.RpcError):
            list_models(server.address, grpc.ssl_channel_credentials(root_certificates=roots))
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=roots,
            private_key=client_key.read_bytes(),
            certificate_chain=client_cert.read_bytes(),
        )
        assert list_models(server.address, with_cert) == 1
    finally:
        server.stop()


def test_unreadable_certificate_is_a_clear_start_up_error(tmp_path):
    tls = {"cert_file": str(tmp_path / "absent.pem"), "key_file": str(tmp_path / "absent.key")}
    with pytest.raises(RuntimeError, match=r"tls\.key_file"):
        start_server("vad", vad_config(tls=tls), tmp_path)
