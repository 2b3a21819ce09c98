"""API-key authentication: keys are held only as SHA-256 digests and compared in constant time.

Keys come from a file (one per line) and/or an environment variable (comma
separated); an entry "sha256:<hex>" is a digest, so deployments never need to hold
plain keys. Clients send `authorization: Bearer <key>`. A server watches its keys file
and reads it again when it changes, so a key is revoked (or added) by editing the file,
without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from speechmesh.runtime.config import AuthConfig
from speechmesh.runtime.errors import Unauthenticated

DIGEST_PREFIX = "sha256:"
RELOAD_INTERVAL_S = 1.0
"""How often, at most, a verifier looks whether its keys file changed."""

log = logging.getLogger(__name__)


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


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a rewritten file from the one read before; None while it is absent."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


class ApiKeyVerifier:
    """Checks the `authorization` metadata of a call against the known key digests.

    Made by `from_config`, it reads the keys file again (at most once per
    RELOAD_INTERVAL_S, when the file changed) and from then on checks against the new
    keys. A file that cannot be read or holds no usable key keeps the previous keys,
    with an error logged: a broken edit must not lock every caller out.
    """

    def __init__(
        self,
        digests: Iterable[bytes],
        config: AuthConfig | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self._digests = tuple(digests)
        self._config = config
        self._environ = environ
        watched = config.keys_file if config is not None else None
        self._watched = watched
        self._stamp = _stamp(watched) if watched is not None else None
        self._checked_at = time.monotonic()

    @classmethod
    def from_config(
        cls, config: AuthConfig, environ: Mapping[str, str] = os.environ
    ) -> ApiKeyVerifier:
        """The configured keys (AuthConfigError when there is none), the file watched."""
        return cls(load_key_digests(config, environ), config, environ)

    def _reload_if_changed(self) -> None:
        if self._watched is None or self._config is None:
            return
        now = time.monotonic()
        if now - self._checked_at < RELOAD_INTERVAL_S:
            return
        self._checked_at = now
        stamp = _stamp(self._watched)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            digests = load_key_digests(self._config, self._environ)
        except AuthConfigError as error:
            log.error("API keys not reloaded, the previous ones stay in force: %s", error)
            return
        self._digests = tuple(digests)
        log.info("API keys reloaded from %s: %d keys", self._watched, len(digests))

    def verify(self, authorization: str | None) -> None:
        self._reload_if_changed()
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
