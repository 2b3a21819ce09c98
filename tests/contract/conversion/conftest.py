"""A real conversion server shared by the conversion contract tests."""

from __future__ import annotations

import pytest
from support import RunningServer, start_server


def conversion_config(models: list[dict], **overrides: object) -> dict:
    config: dict = {
        "services": {"conversion": {"port": 0, "models": models}},
        "drain_grace_s": 20,
    }
    config.update(overrides)
    return config


EMBEDDED_MODELS = [
    {"id": "ge2e-resemblyzer", "family": "ge2e-resemblyzer"},
    {"id": "deepfilternet3", "family": "deepfilternet3"},
    {"id": "rnnoise", "family": "rnnoise"},
]


@pytest.fixture(scope="session")
def conversion_server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """The real embedded models, served over real gRPC."""
    server = start_server(
        "conversion", conversion_config(EMBEDDED_MODELS), tmp_path_factory.mktemp("conversion")
    )
    yield server
    server.stop()
