"""Tests for weight resolution (local path, HF cache, offline) and safe checkpoint loading."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx2  # huggingface_hub's HTTP client: its errors carry one of these responses
import numpy as np
import pytest
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

REV = "0123456789abcdef0123456789abcdef01234567"

# Set by _mark_ran when an unpickled object's code runs; must stay empty.
_SIDE_EFFECTS: list[str] = []


def _mark_ran() -> dict[str, Any]:
    _SIDE_EFFECTS.append("ran")
    return {}


class _NeedsCode:
    """An object whose unpickling runs _mark_ran: what weights_only must refuse."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_mark_ran, ())


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test may reach the network or the real HF cache."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home))
    # huggingface_hub read these at import; patch what it actually consults.
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(home / "hub"))
    return home


def _fake_cache(root: Path, repo_id: str, files: dict[str, bytes], ref: str = "main") -> Path:
    """A hub cache laid out like huggingface_hub's: refs/<ref> -> snapshots/<rev>/files."""
    repo_dir = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / REV
    for name, data in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(data)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / ref).write_text(REV)
    return snapshot


# ----------------------------------------------------------------------------- resolve


def test_resolve_local_file_and_dir_as_is(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    assert weights.resolve(str(file)) == file
    assert weights.resolve(str(tmp_path)) == tmp_path


def test_resolve_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "voices").mkdir()
    assert weights.resolve("~/voices") == tmp_path / "voices"


def test_resolve_from_cache_offline(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    snapshot = _fake_cache(
        cache, "org/name", {"model.safetensors": b"w", "config.json": b"{}", "sub/a.txt": b"a"}
    )
    got = weights.resolve(
        "org/name", allow_patterns=["*.safetensors", "config.json"], cache_dir=cache, offline=True
    )
    assert got == snapshot
    assert (got / "model.safetensors").read_bytes() == b"w"


def test_resolve_from_cache_follows_hub_offline_setting(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    snapshot = _fake_cache(cache, "org/name", {"model.safetensors": b"w"})
    assert weights.resolve("org/name", cache_dir=cache) == snapshot


def test_resolve_cache_by_revision_in_source(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    snapshot = _fake_cache(cache, "org/name", {"model.safetensors": b"w"}, ref="v1")
    assert weights.resolve("org/name@v1", cache_dir=cache, offline=True) == snapshot
    assert weights.resolve(f"org/name@{REV}", cache_dir=cache, offline=True) == snapshot
    with pytest.raises(FailedPrecondition):
        weights.resolve("org/name", cache_dir=cache, offline=True)  # no refs/main


def test_resolve_cached_but_wanted_file_missing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _fake_cache(cache, "org/name", {"config.json": b"{}"})
    with pytest.raises(FailedPrecondition) as info:
        weights.resolve("org/name", allow_patterns=["*.safetensors"], cache_dir=cache, offline=True)
    assert "*.safetensors" in info.value.message


def test_resolve_uncached_offline_explains(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(FailedPrecondition) as info:
        weights.resolve("org/absent", allow_patterns=["model.pt"], cache_dir=cache, offline=True)
    message = info.value.message
    assert "org/absent" in message
    assert "HF_HUB_OFFLINE" in message
    assert "model.pt" in message
    assert str(cache) in message
    assert "speechmesh models pull org/absent" in message


def test_resolve_uncached_default_cache_named(_offline_hub: Path) -> None:
    with pytest.raises(FailedPrecondition) as info:
        weights.resolve("org/absent")
    assert str(_offline_hub / "hub") in info.value.message


def test_resolve_download_blocked_by_hub_offline_is_domain_error(tmp_path: Path) -> None:
    # offline=False asks for a download, but huggingface_hub's own offline switch
    # refuses the request before any connection: the failure must still be ours.
    with pytest.raises(FailedPrecondition) as info:
        weights.resolve("org/absent", cache_dir=tmp_path, offline=False, progress=False)
    assert "org/absent" in info.value.message


def _fake_hub(monkeypatch: pytest.MonkeyPatch, download: Any) -> list[dict[str, Any]]:
    """Replace snapshot_download: cache look-ups miss, downloads call `download(**kwargs)`."""
    calls: list[dict[str, Any]] = []

    def fake(repo_id: str, **kwargs: Any) -> str:
        calls.append(kwargs)
        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not cached")
        return str(download(repo_id=repo_id, **kwargs))

    monkeypatch.setattr(weights, "snapshot_download", fake)
    return calls


def _http_error(cls: type[HfHubHTTPError], status: int) -> HfHubHTTPError:
    request = httpx2.Request("GET", "https://huggingface.co/api/models/org/name")
    return cls("refused", response=httpx2.Response(status, request=request))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_http_error(GatedRepoError, 401), "HF_TOKEN"),
        (_http_error(RepositoryNotFoundError, 404), "HF_TOKEN"),
        (_http_error(HfHubHTTPError, 401), "HF_TOKEN"),
        (_http_error(HfHubHTTPError, 500), "HTTP 500"),
        (_http_error(RevisionNotFoundError, 404), "no such revision"),
        (LocalEntryNotFoundError("connection refused"), "could not be reached"),
        (ConnectionError("proxy said no"), "ConnectionError"),
    ],
)
def test_resolve_download_failures_are_domain_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception, expected: str
) -> None:
    def download(**kwargs: Any) -> Path:
        raise error

    _fake_hub(monkeypatch, download)
    with pytest.raises(FailedPrecondition) as info:
        weights.resolve("org/name", allow_patterns=["*.pt"], cache_dir=tmp_path, offline=False)
    assert expected in info.value.message
    assert "org/name" in info.value.message and "*.pt" in info.value.message
    assert info.value.__cause__ is error


def test_resolve_downloads_when_not_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    snapshot = tmp_path / "snap"

    def download(**kwargs: Any) -> Path:
        snapshot.mkdir()
        (snapshot / "model.pt").write_bytes(b"w")
        return snapshot

    calls = _fake_hub(monkeypatch, download)
    got = weights.resolve(
        "org/name@v2", allow_patterns=["*.pt"], cache_dir=tmp_path, offline=False, progress=False
    )
    assert got == snapshot
    fetched = calls[-1]
    assert fetched["revision"] == "v2" and fetched["allow_patterns"] == ["*.pt"]
    assert fetched["cache_dir"] == tmp_path
    assert fetched["tqdm_class"](total=1).disable  # progress=False silences the bars


def test_resolve_download_without_wanted_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def download(**kwargs: Any) -> Path:
        (tmp_path / "snap").mkdir()
        (tmp_path / "snap" / "README.md").write_text("hi")
        return tmp_path / "snap"

    _fake_hub(monkeypatch, download)
    with pytest.raises(FailedPrecondition, match="no files matching"):
        weights.resolve("org/name", allow_patterns=["*.pt"], cache_dir=tmp_path, offline=False)


@pytest.mark.parametrize("source", ["not a repo", "a/b/c", "./nowhere/x", "/no/such/dir", "org/"])
def test_resolve_unknown_source_not_found(source: str) -> None:
    with pytest.raises(NotFound) as info:
        weights.resolve(source)
    assert source in info.value.message


def test_parse_repo_id() -> None:
    assert weights.parse_repo_id("org/name") == ("org/name", None)
    assert weights.parse_repo_id("org/name@v1.0") == ("org/name", "v1.0")
    assert weights.parse_repo_id(f"org/name@{REV}") == ("org/name", REV)
    assert weights.parse_repo_id("org/name@") is None
    assert weights.parse_repo_id("org--x/name") is None
    assert weights.parse_repo_id("name") is None


def test_resolve_conflicting_revisions(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        weights.resolve("org/name@v1", revision="v2", cache_dir=tmp_path, offline=True)


# ------------------------------------------------------------------------ require_files


def test_require_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.pt").write_bytes(b"")
    assert weights.require_files(tmp_path, ["a.json", "b.pt"]) == [
        tmp_path / "a.json",
        tmp_path / "b.pt",
    ]
    with pytest.raises(FailedPrecondition) as info:
        weights.require_files(tmp_path, ["a.json", "missing.safetensors"])
    assert "missing.safetensors" in info.value.message
    assert "b.pt" in info.value.message


# ---------------------------------------------------------------------- load_state_dict


def test_load_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_torch({"a": torch.arange(6.0).reshape(2, 3)}, str(path))
    state = weights.load_state_dict(path)
    assert torch.equal(state["a"], torch.arange(6.0).reshape(2, 3))


def test_load_safetensors_without_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.safetensors"
    save_numpy({"a": np.ones((2, 2), dtype=np.float32)}, str(path))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    state = weights.load_state_dict(path)
    assert isinstance(state["a"], np.ndarray)
    np.testing.assert_array_equal(state["a"], np.ones((2, 2), dtype=np.float32))


def test_load_corrupt_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(FailedPrecondition, match="safetensors"):
        weights.load_state_dict(path)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt"])
def test_load_torch_plain_state_dict(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"w{suffix}"
    torch.save({"model": {"w": torch.ones(3)}, "step": 7}, path)
    state = weights.load_state_dict(path)
    assert torch.equal(state["model"]["w"], torch.ones(3))
    assert state["step"] == 7


def test_load_torch_refuses_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(1), "obj": _NeedsCode()}, path)
    _SIDE_EFFECTS.clear()
    with pytest.raises(FailedPrecondition) as info:
        weights.load_state_dict(path)
    assert "not a plain tensor checkpoint" in info.value.message
    assert _SIDE_EFFECTS == []


def test_load_torch_non_dict(tmp_path: Path) -> None:
    path = tmp_path / "t.pt"
    torch.save(torch.ones(2), path)
    with pytest.raises(FailedPrecondition, match="not a dict"):
        weights.load_state_dict(path)


def test_load_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "w.onnx"
    odd.write_bytes(b"")
    with pytest.raises(FailedPrecondition, match="unknown format"):
        weights.load_state_dict(odd)
    with pytest.raises(FailedPrecondition, match="does not exist"):
        weights.load_state_dict(tmp_path / "absent.pt")


# ------------------------------------------------------------------- unwrap / prefixes


def test_unwrap() -> None:
    ckpt = {"model": {"generator": {"w": 1}, "step": 3}}
    assert weights.unwrap(ckpt, "model", "generator") == {"w": 1}
    assert weights.unwrap(ckpt) == ckpt
    with pytest.raises(FailedPrecondition) as info:
        weights.unwrap(ckpt, "model", "discriminator")
    assert "'discriminator'" in info.value.message
    assert "generator" in info.value.message and "step" in info.value.message
    with pytest.raises(FailedPrecondition, match="not a dict"):
        weights.unwrap(ckpt, "model", "step")
    with pytest.raises(FailedPrecondition, match="not a dict"):
        weights.unwrap(ckpt, "model", "step", "x")


def test_strip_prefix() -> None:
    state = {"module.a": 1, "module.b.c": 2, "other": 3}
    assert weights.strip_prefix(state, "module.") == {"a": 1, "b.c": 2, "other": 3}


# --------------------------------------------------------------------------- load_strict


def _net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def test_load_strict_exact_match() -> None:
    source, target = _net(), _net()
    with torch.no_grad():
        source[0].weight.fill_(0.5)
    weights.load_strict(target, source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_load_strict_missing_key() -> None:
    state = _net().state_dict()
    del state["0.bias"]
    with pytest.raises(FailedPrecondition) as info:
        weights.load_strict(_net(), state)
    assert "missing keys" in info.value.message and "0.bias" in info.value.message


def test_load_strict_unexpected_key() -> None:
    state = _net().state_dict()
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(FailedPrecondition) as info:
        weights.load_strict(_net(), state)
    assert "unexpected keys" in info.value.message and "extra.weight" in info.value.message


def test_load_strict_shape_mismatch() -> None:
    state = _net().state_dict()
    state["0.weight"] = torch.zeros(5, 3)
    target = _net()
    before = target[0].weight.detach().clone()
    with pytest.raises(FailedPrecondition) as info:
        weights.load_strict(target, state)
    assert "0.weight: checkpoint [5, 3] vs model [4, 3]" in info.value.message
    assert torch.equal(target[0].weight, before)  # nothing was loaded


def test_load_strict_ignore_patterns() -> None:
    source = _net()
    state = {k: v for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    state["head.extra"] = torch.zeros(2)
    target = _net()
    weights.load_strict(target, state, ignore=["*.num_batches_tracked", "head.*"])
    assert torch.equal(target[0].weight, source[0].weight)


def test_load_strict_truncates_long_lists() -> None:
    state = {f"junk.{i}": torch.zeros(1) for i in range(100)}
    state.update(_net().state_dict())
    with pytest.raises(FailedPrecondition) as info:
        weights.load_strict(_net(), state)
    assert "more (100 in all)" in info.value.message
    assert len(info.value.message) < 1000


def test_load_strict_accepts_numpy_values(tmp_path: Path) -> None:
    source = _net()
    state = {k: v.numpy() for k, v in source.state_dict().items()}
    target = _net()
    weights.load_strict(target, state)
    assert torch.equal(target[0].weight, source[0].weight)


def test_an_optional_model_loads_weights_at_hand_and_never_downloads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    snapshot = _fake_cache(cache, "org/cached", {"model.pt": b"w"})
    with weights.downloads_allowed(False):
        assert weights.resolve("org/cached", cache_dir=cache, offline=False) == snapshot
    calls = _fake_hub(monkeypatch, lambda **_: pytest.fail("an optional model downloaded"))
    with weights.downloads_allowed(False), pytest.raises(FailedPrecondition) as raised:
        weights.resolve("org/missing", cache_dir=cache, offline=False, progress=False)
    assert "optional model loads only weights at hand" in str(raised.value)
    assert "speechmesh models pull org/missing" in str(raised.value)
    assert not any(not call.get("local_files_only") for call in calls)
