"""`speechmesh models pull`: what it fetches for each model, offline (HF_HUB_OFFLINE=1).

No test reaches the hub: downloads are refused by offline mode, and hub repos are
served from hand-built caches laid out as huggingface_hub lays them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants as hf_constants
from typer.testing import CliRunner

from speechmesh.cli.main import app
from speechmesh.services.stt.whisper import embedded_model_path as whisper_wheel
from speechmesh.services.vad.silero import embedded_model_path as silero_wheel

REV = "89abcdef0123456789abcdef0123456789abcdef"
WHISPER_FILES = {
    "config.json": b"{}",
    "model.bin": b"ct2",
    "tokenizer.json": b"{}",
    "vocabulary.txt": b"a",
}


@pytest.fixture(autouse=True)
def hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty hub cache in offline mode: nothing can be downloaded."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home))
    # huggingface_hub read these at import; patch what it actually consults.
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(home / "hub"))
    return home / "hub"


def cache_repo(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REV
    for name, data in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(data)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REV)
    return snapshot


def write_config(tmp_path: Path, services: dict[str, list[dict[str, object]]]) -> Path:
    data = {
        "services": {
            name: {"port": 50061 + index, "models": models}
            for index, (name, models) in enumerate(services.items())
        }
    }
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def pull(*args: str) -> tuple[int, dict[str, str], str]:
    """Exit code, the reported location per pulled name, and the error output."""
    result = CliRunner().invoke(app, ["models", "pull", *args])
    pulled = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition(": ")
        if " -> " in rest:
            pulled[name] = rest.split(" -> ", 1)[1]
    return result.exit_code, pulled, result.stderr


def test_embedded_models_are_found_in_their_wheels():
    code, pulled, errors = pull()
    assert code == 0, errors
    from speechmesh.services.conversion.restoration import deepfilternet, rnnoise
    from speechmesh.services.tts import piper

    assert pulled == {
        "silero-vad": str(silero_wheel()),
        "whisper-tiny.en": str(whisper_wheel()),
        "piper-joe": str(piper.embedded_model_path()),
        "deepfilternet3": str(deepfilternet.embedded_model_path()),
        "rnnoise": str(rnnoise.embedded_model_path()),
        # GE2E's default sits in a module with another encoder: found when it loads.
        "ge2e-resemblyzer": "left to family 'ge2e-resemblyzer', which resolves it on load",
    }


def test_a_size_tag_is_pulled_as_the_family_loads_it(tmp_path, hub_cache):
    config = write_config(
        tmp_path, {"stt": [{"id": "small", "family": "faster-whisper", "source": "small.en"}]}
    )
    snapshot = cache_repo(hub_cache, "Systran/faster-whisper-small.en", WHISPER_FILES)
    code, pulled, errors = pull("--config", str(config))
    assert code == 0, errors
    assert pulled == {"small": str(snapshot)}


def test_a_family_default_repo_is_pulled_with_the_files_it_reads(tmp_path, hub_cache):
    config = write_config(
        tmp_path, {"conversion": [{"id": "harmony", "family": "harmonyspeech-v1-encoder"}]}
    )
    files = {"encoder/config.json": b"{}", "encoder/encoder.pt": b"pt"}
    snapshot = cache_repo(hub_cache, "harmony-ai/harmony-speech-v1", files)
    code, pulled, errors = pull("--config", str(config))
    assert code == 0, errors
    assert pulled == {"harmony": str(snapshot)}


def test_a_cached_repo_lacking_a_file_the_family_reads_is_an_error(tmp_path, hub_cache):
    config = write_config(
        tmp_path, {"stt": [{"id": "small", "family": "faster-whisper", "source": "small.en"}]}
    )
    cache_repo(hub_cache, "Systran/faster-whisper-small.en", {"config.json": b"{}"})
    code, pulled, errors = pull("--config", str(config))
    assert code == 1 and pulled == {}
    assert "Systran/faster-whisper-small.en" in errors and "model.bin" in errors


def test_offline_with_nothing_cached_says_why_and_how_to_fix(tmp_path, hub_cache):
    config = write_config(
        tmp_path, {"vad": [{"id": "vad-hub", "family": "silero-vad", "source": "org/vad"}]}
    )
    code, pulled, errors = pull("--config", str(config), "--no-progress")
    assert code == 1 and pulled == {}
    assert "'org/vad'" in errors and "*.onnx" in errors
    assert "HF_HUB_OFFLINE" in errors and str(hub_cache) in errors
    assert "speechmesh models pull org/vad" in errors


def test_repos_named_on_the_command_line_take_include_globs(hub_cache):
    snapshot = cache_repo(hub_cache, "org/voice", {"a.onnx": b"x", "b.json": b"{}"})
    code, pulled, errors = pull("org/voice", "--include", "*.onnx")
    assert code == 0, errors
    assert pulled == {"org/voice": str(snapshot)}
    code, pulled, errors = pull("org/voice", "--include", "*.safetensors")
    assert code == 1 and "*.safetensors" in errors


def test_service_selects_its_models_and_names_add_to_them(hub_cache):
    snapshot = cache_repo(hub_cache, "org/extra", {"f.bin": b"x"})
    code, pulled, errors = pull("--service", "vad", "org/extra")
    assert code == 0, errors
    assert pulled == {"silero-vad": str(silero_wheel()), "org/extra": str(snapshot)}


def test_local_paths_are_reported_where_they_are(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"x")
    config = write_config(
        tmp_path, {"vad": [{"id": "local", "family": "silero-vad", "source": str(folder)}]}
    )
    code, pulled, errors = pull("--config", str(config))
    assert code == 0, errors
    assert pulled == {"local": str(folder)}


def test_bad_names_services_configs_and_families(tmp_path):
    code, _, errors = pull("no-such-model")
    from speechmesh.runtime.config import load_config

    config = load_config()
    ids = sorted(m.id for service in config.services.values() for m in service.models)
    assert code == 2 and f"configured: {', '.join(sorted(set(ids)))}" in errors
    code, _, errors = pull("--service", "indextts")
    assert code == 2 and "no service 'indextts'" in errors
    broken = tmp_path / "broken.yaml"
    broken.write_text("services: {vad: {port: -1}}")
    code, _, errors = pull("--config", str(broken))
    assert code == 2 and "services.vad.port" in errors
    config = write_config(tmp_path, {"vad": [{"id": "odd", "family": "no-such-family"}]})
    code, _, errors = pull("--config", str(config))
    assert code == 1 and "unknown model family 'no-such-family'" in errors
