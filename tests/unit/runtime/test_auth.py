"""API keys: read from file and env, held as digests, checked in constant time, fail closed."""

from __future__ import annotations

import hashlib

import pytest

from speechmesh.runtime import auth
from speechmesh.runtime.auth import ApiKeyVerifier, AuthConfigError, load_key_digests
from speechmesh.runtime.config import AuthConfig
from speechmesh.runtime.errors import Unauthenticated


def test_keys_from_file_and_env_plain_or_digest(tmp_path):
    keys = tmp_path / "keys"
    digest = hashlib.sha256(b"from-digest").hexdigest()
    keys.write_text(f"# comment\nfrom-file\n\nsha256:{digest}\n")
    config = AuthConfig(enabled=True, keys_file=keys, keys_env="K")
    verifier = ApiKeyVerifier(load_key_digests(config, {"K": "a, b"}))
    for key in ("from-file", "from-digest", "a", "b"):
        verifier.verify(f"Bearer {key}")
    for header, reason in (
        (None, "missing"),
        ("Bearer nope", "invalid"),
        ("Basic a", "malformed"),
        ("Bearer ", "malformed"),
        ("from-file", "malformed"),
    ):
        with pytest.raises(Unauthenticated, match=reason):
            verifier.verify(header)


def test_fails_closed_without_keys_or_with_bad_entries(tmp_path):
    with pytest.raises(AuthConfigError, match="no API key"):
        load_key_digests(AuthConfig(enabled=True, keys_env="NONE"), {})
    with pytest.raises(AuthConfigError, match="keys_file"):
        load_key_digests(AuthConfig(enabled=True, keys_file=tmp_path / "absent"), {})
    with pytest.raises(AuthConfigError, match="64 hex"):
        load_key_digests(AuthConfig(enabled=True, keys_env="K"), {"K": "sha256:abcd"})


def test_plain_keys_are_not_kept():
    digests = load_key_digests(AuthConfig(enabled=True, keys_env="K"), {"K": "topsecret"})
    assert digests == [hashlib.sha256(b"topsecret").digest()]


def test_an_edited_keys_file_takes_effect_without_a_restart(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(auth, "RELOAD_INTERVAL_S", 0.0)
    keys = tmp_path / "keys"
    keys.write_text("kept\nrevoked\n")
    verifier = ApiKeyVerifier.from_config(AuthConfig(enabled=True, keys_file=keys), {})
    verifier.verify("Bearer revoked")
    keys.write_text("kept\nadded-later\n")
    verifier.verify("Bearer kept")
    verifier.verify("Bearer added-later")
    with pytest.raises(Unauthenticated, match="invalid API key"):
        verifier.verify("Bearer revoked")
    # A broken edit keeps the keys in force, and says so.
    keys.write_text("sha256:abcd\n")
    verifier.verify("Bearer kept")
    assert "previous ones stay in force" in caplog.text
    keys.unlink()
    verifier.verify("Bearer added-later")


def test_the_keys_file_is_looked_at_once_per_interval(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "RELOAD_INTERVAL_S", 3600.0)
    keys = tmp_path / "keys"
    keys.write_text("first\n")
    verifier = ApiKeyVerifier.from_config(AuthConfig(enabled=True, keys_file=keys), {})
    keys.write_text("second-key\n")
    verifier.verify("Bearer first")
    with pytest.raises(Unauthenticated, match="invalid API key"):
        verifier.verify("Bearer second-key")
