"""Config loading: the embedded default is valid, and errors name the field."""

from __future__ import annotations

import pytest

from speechmesh.runtime.config import ConfigError, load_config, parse_config


def test_embedded_config_is_valid():
    config = load_config()
    assert config.service("vad").models[0].family == "silero-vad"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {
                "services": {
                    "vad": {"port": 1, "models": [{"id": "a", "family": "x", "max_batch_size": 0}]}
                }
            },
            "services.vad.models[0].max_batch_size",
        ),
        ({"services": {"vad": {"port": 70000}}}, "services.vad.port"),
        ({"services": {"vad": {"port": 1, "modles": []}}}, "services.vad.modles"),
        ({"services": {"ttx": {"port": 1}}}, "services.ttx"),
        (
            {
                "services": {
                    "vad": {
                        "port": 1,
                        "models": [{"id": "a", "family": "x"}, {"id": "a", "family": "y"}],
                    }
                }
            },
            "appears twice",
        ),
        (
            {"services": {"vad": {"port": 1, "models": [{"id": "Bad Id", "family": "x"}]}}},
            "services.vad.models[0].id",
        ),
        (
            {
                "services": {
                    "vad": {"port": 1, "models": [{"id": "a", "family": "x", "device": "tpu"}]}
                }
            },
            "services.vad.models[0].device",
        ),
    ],
)
def test_errors_name_the_field(document, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(document)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_unknown_service_lookup_names_the_configured_ones():
    config = parse_config({"services": {"vad": {"port": 0}}})
    with pytest.raises(ConfigError, match="configured: vad"):
        config.service("stt")
