"""Which key and channel the gateway uses for its backends, and the configs it refuses."""

from __future__ import annotations

import pytest

from speechmesh.gateway.access import BackendAccess
from speechmesh.runtime.auth import AuthConfigError
from speechmesh.runtime.config import ConfigError, MeshConfig


def mesh(**fields) -> MeshConfig:
    return MeshConfig.model_validate(
        {"services": {"gateway": {"port": 50060}, "vad": {"port": 50061}}, **fields}
    )


def test_the_gateway_key_goes_on_every_call_unless_callers_keys_are_forwarded():
    own = BackendAccess.from_config(mesh(), {"SPEECHMESH_BACKEND_KEY": "gw"})
    assert own.probe_metadata() == [("authorization", "Bearer gw")]
    assert own.call_metadata("Bearer caller") == [("authorization", "Bearer gw")]
    forwarding = BackendAccess.from_config(
        mesh(gateway={"forward_caller_key": True}), {"SPEECHMESH_BACKEND_KEY": "gw"}
    )
    assert forwarding.probe_metadata() == [("authorization", "Bearer gw")]
    assert forwarding.call_metadata("Bearer caller") == [("authorization", "Bearer caller")]
    assert forwarding.call_metadata(None) == []
    assert BackendAccess.from_config(mesh(), {}).call_metadata("Bearer caller") == []


def test_the_key_file_comes_before_the_environment(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    access = BackendAccess.from_config(
        mesh(gateway={"backend_key_file": str(key_file)}), {"SPEECHMESH_BACKEND_KEY": "env"}
    )
    assert access.key == "from-file"
    key_file.write_text("\n")
    with pytest.raises(AuthConfigError, match="is empty"):
        BackendAccess.from_config(mesh(gateway={"backend_key_file": str(key_file)}), {})


def test_auth_without_a_backend_key_fails_closed():
    with pytest.raises(AuthConfigError, match=r"\$SPEECHMESH_BACKEND_KEY"):
        BackendAccess.from_config(mesh(auth={"enabled": True}), {})


def test_tls_on_the_embedded_servers_needs_a_ca_for_the_gateway(tmp_path):
    tls = {"cert_file": str(tmp_path / "c.pem"), "key_file": str(tmp_path / "k.pem")}
    with pytest.raises(ConfigError, match=r"gateway\.backend_tls\.ca_file"):
        BackendAccess.from_config(mesh(tls=tls), {})
    missing = {"ca_file": str(tmp_path / "absent.pem")}
    with pytest.raises(ConfigError, match=r"absent\.pem"):
        BackendAccess.from_config(mesh(gateway={"backend_tls": missing}), {})
    half = {"ca_file": str(tmp_path / "absent.pem"), "cert_file": str(tmp_path / "c.pem")}
    with pytest.raises(ConfigError, match="go together"):
        BackendAccess.from_config(mesh(gateway={"backend_tls": half}), {})
