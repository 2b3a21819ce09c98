"""A real conversion server shared by the conversion contract tests."""

from __future__ import annotations

import pytest
from checkpoints import save_openvoice, save_voicefixer
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
    # Two threads: jobs of concurrent streams run side by side.
    {"id": "rnnoise", "family": "rnnoise", "threads": 2},
]


@pytest.fixture(scope="session")
def conversion_server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """The real embedded models, and tiny OpenVoice and VoiceFixer checkpoints, over real gRPC."""
    root = tmp_path_factory.mktemp("conversion")
    tiny = []
    for version in ("v2", "v1"):
        save_openvoice(root / f"openvoice-{version}", version)
        tiny.append(
            {
                "id": f"openvoice-{version}-tiny",
                "family": f"openvoice-{version}",
                "source": str(root / f"openvoice-{version}"),
            }
        )
    save_voicefixer(root / "voicefixer")
    tiny.append(
        {"id": "voicefixer-tiny", "family": "voicefixer", "source": str(root / "voicefixer")}
    )
    server = start_server("conversion", conversion_config(EMBEDDED_MODELS + tiny), root)
    yield server
    server.stop()
