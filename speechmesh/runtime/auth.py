"""API-key authentication: keys are held only as SHA-256 digests and compared in constant time.

Keys come from a file (one per line) and/or an environment variable (comma
separated); an entry "sha256:<hex>" is a digest, so deployments never need to hold
plain keys. Clients send `authorization: Bearer <key>`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping

from speechmesh.runtime.config import AuthConfig
from speechmesh.runtime.errors import Unauthenticated

DIGEST_PREFIX = "sha256:"


class AuthConfigError(Exception):
    """Auth is enabled but no usable key could be read: the server must not start."""


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _parse_entries(entries: Iterable[str], origin: str) -> list[bytes]:
    digests = []
    for raw in entries:
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith(DIGEST_PREFIX):
            hex_digest = entry.removeprefix(DIGEST_PREFIX)
            try:
                value = bytes.fromhex(hex_digest)
            except ValueError:
                raise AuthConfigError(f"{origin}: malformed sha256 digest entry") from None
            if len(value) != 32:
                raise AuthConfigError(f"{origin}: a sha256 digest has 64 hex digits")
            digests.append(value)
        else:
            digests.append(digest(entry))
    return digests


def load_key_digests(config: AuthConfig, environ: Mapping[str, str] = os.environ) -> list[bytes]:
    """Reads every configured key source. Fails closed: enabled with no key is an error."""
    digests: list[bytes] = []
    if config.keys_file is not None:
        try:
            lines = config.keys_file.read_text().splitlines()
        except OSError as error:
            raise AuthConfigError(f"auth.keys_file {config.keys_file}: {error.strerror}") from None
        digests += _parse_entries(lines, f"auth.keys_file {config.keys_file}")
    env_value = environ.get(config.keys_env, "")
    digests += _parse_entries(env_value.split(","), f"${config.keys_env}")
    if config.enabled and not digests:
        raise AuthConfigError(
            f"auth is enabled but no API key was found in auth.keys_file or ${config.keys_env}"
        )
    return digests


class ApiKeyVerifier:
    """Checks the `authorization` metadata of a call against the known key digests."""

    def __init__(self, digests: Iterable[bytes]) -> None:
        self._digests = tuple(digests)

    def verify(self, authorization: str | None) -> None:
        if not authorization:
            raise Unauthenticated("missing API key: send metadata 'authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("malformed authorization metadata: expected 'Bearer <key>'")
        offered = digest(key.strip())
        # Compare against every digest so timing does not tell which one (if any) matched.
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(offered, known)
        if not matched:
            raise Unauthenticated("invalid API key")
