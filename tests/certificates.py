"""Keys and certificates for TLS tests, made by the openssl command for each test."""

from __future__ import annotations

import shutil
import subprocess

import pytest

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_pair(directory, name: str, ca: tuple | None = None) -> tuple:
    """A key and certificate for 127.0.0.1; self-signed, or signed by `ca`."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    new_key = ("-newkey", "rsa:2048", "-nodes", "-keyout", key, "-subj", f"/CN={name}")
    if ca is None:
        san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
        openssl("req", "-x509", *new_key, "-days", 1, "-out", cert, "-addext", san)
        return key, cert
    csr = directory / f"{name}.csr"
    openssl("req", *new_key, "-out", csr)
    openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca[1],
        "-CAkey",
        ca[0],
        "-CAcreateserial",
        "-days",
        1,
        "-out",
        cert,
    )
    return key, cert
