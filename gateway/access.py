"""How the gateway reaches its backends: the channel (plaintext, TLS or mutual TLS) and
the credential each backend call carries.

Callers are authenticated by the gateway itself (the runtime's interceptor), so by
default every backend call, probes included, carries the gateway's own key; with
`forward_caller_key` a proxied call carries the caller's key instead. Auth on without a
gateway key fails closed at start-up: every probe of a backend would be refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from speechmesh.runtime.auth import AuthConfigError
from speechmesh.runtime.config import ConfigError, MeshConfig
from speechmesh.runtime.server import client_credentials

AUTHORIZATION = "authorization"
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.keepalive_time_ms", 30_000),
]


@dataclass(frozen=True)
class BackendAccess:
    key: str | None = None
    forward_caller_key: bool = False
    credentials: grpc.ChannelCredentials | None = None
    server_name: str | None = None

    @classmethod
    def from_config(
        cls, config: MeshConfig, environ: Mapping[str, str] = os.environ
    ) -> BackendAccess:
        gateway = config.gateway
        key = _read_key(config, environ)
        if config.auth.enabled and key is None:
            raise AuthConfigError(
                "auth is enabled but the gateway has no key for its backends: put one of the "
                f"mesh's keys in ${gateway.backend_key_env} or gateway.backend_key_file"
            )
        tls = gateway.backend_tls
        if tls is None:
            if config.tls is not None and not gateway.backends:
                raise ConfigError(
                    "tls is set, so every server of this config serves TLS: set "
                    "gateway.backend_tls.ca_file for the gateway to reach them"
                )
            return cls(key, gateway.forward_caller_key)
        credentials = client_credentials(tls, "gateway.backend_tls")
        return cls(key, gateway.forward_caller_key, credentials, tls.server_name)

    def channel(self, address: str) -> grpc.aio.Channel:
        if self.credentials is None:
            return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        options = list(CHANNEL_OPTIONS)
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return grpc.aio.secure_channel(address, self.credentials, options=options)

    def probe_metadata(self) -> list[tuple[str, str]]:
        return [(AUTHORIZATION, f"Bearer {self.key}")] if self.key else []

    def call_metadata(self, caller_authorization: str | None) -> list[tuple[str, str]]:
        """The credential of a call made for a caller."""
        if self.forward_caller_key:
            return [(AUTHORIZATION, caller_authorization)] if caller_authorization else []
        return self.probe_metadata()


def _read_key(config: MeshConfig, environ: Mapping[str, str]) -> str | None:
    gateway = config.gateway
    if gateway.backend_key_file is not None:
        try:
            lines = gateway.backend_key_file.read_text().splitlines()
        except OSError as error:
            raise AuthConfigError(
                f"gateway.backend_key_file {gateway.backend_key_file}: {error.strerror}"
            ) from None
        key = lines[0].strip() if lines else ""
        if not key:
            raise AuthConfigError(f"gateway.backend_key_file {gateway.backend_key_file} is empty")
        return key
    return environ.get(gateway.backend_key_env, "").strip() or None
