"""Find model weights (local path, Hugging Face cache, hub download) and load them safely.

Every model family goes through here so that missing, unreadable or mismatched
weights always surface as a `FailedPrecondition` that says what was wanted, where
it was looked for and how to fix it, never as a library exception or a silent
random init. Checkpoints are read as safetensors, or as `.pt/.pth/.bin/.ckpt`
only through `torch.load(weights_only=True)`, so no checkpoint can run code.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

# Only the exception type: nothing here ever unpickles; torch.load(weights_only=True)
# raises this when a checkpoint would need code to be rebuilt.
from pickle import UnpicklingError
from typing import Any, NamedTuple

from huggingface_hub import constants as hf_constants
from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

# Public helpers that huggingface_hub.utils exports lazily, which mypy cannot see.
from huggingface_hub.utils import filter_repo_objects, validate_repo_id  # type: ignore[attr-defined]
from huggingface_hub.utils.tqdm import tqdm as hf_tqdm

from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

__all__ = [
    "RepoRef",
    "downloads_allowed",
    "fold_weight_norm",
    "load_state_dict",
    "load_strict",
    "load_tensor",
    "parse_repo_id",
    "require_files",
    "resolve",
    "strip_prefix",
    "unwrap",
]

SAFETENSORS_SUFFIXES = frozenset({".safetensors"})
TORCH_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt"})

# Long key lists make an error unreadable; this many names per list is enough to
# see the pattern (a missing prefix, a renamed layer).
_MAX_LISTED = 12

# "org/name" or "org/name@revision"; the hub's own validator then rejects what the
# hub would (double dashes, trailing dots, over-long names).
_REPO_RE = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[^\s@]+))?")


class RepoRef(NamedTuple):
    """A hub repository id with the revision given after `@`, if any."""

    repo_id: str
    revision: str | None


class _SilentTqdm(hf_tqdm):  # type: ignore[misc]
    """huggingface_hub's progress bar, always disabled: used when progress=False."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]


# --------------------------------------------------------------------------- resolve


_DOWNLOADS = ContextVar("speechmesh_weights_downloads", default=True)


@contextmanager
def downloads_allowed(allowed: bool) -> Iterator[None]:
    """Within it (in this thread), `resolve` downloads only when `allowed`: an optional
    model loads from weights at hand."""
    token = _DOWNLOADS.set(allowed)
    try:
        yield
    finally:
        _DOWNLOADS.reset(token)


def resolve(
    source: str,
    *,
    allow_patterns: list[str] | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
    progress: bool = True,
    token: str | None = None,
) -> Path:
    """A local file or directory holding `source`: local path, else HF cache, else download.

    `offline=None` follows HF_HUB_OFFLINE as huggingface_hub read it; `token=None`
    lets huggingface_hub use HF_TOKEN or the stored login.
    """
    local = _existing_local_path(source)
    if local is not None:
        return local
    ref = parse_repo_id(source)
    if ref is None:
        raise NotFound(
            f"weights {source!r}: no such local file or directory, and not a Hugging Face "
            "repo id ('org/name' or 'org/name@revision')"
        )
    wanted_revision = _pick_revision(ref, revision)
    cache = _cache_dir(cache_dir)
    cached = _from_cache(ref.repo_id, wanted_revision, allow_patterns, cache, token)
    if cached is not None:
        return cached
    if not _DOWNLOADS.get():
        raise FailedPrecondition(
            _not_available(
                ref.repo_id,
                wanted_revision,
                allow_patterns,
                cache,
                "they are not in the cache, and an optional model loads only weights at hand",
            )
        )
    if _is_offline(offline):
        raise FailedPrecondition(
            _not_available(
                ref.repo_id,
                wanted_revision,
                allow_patterns,
                cache,
                "they are not in the cache and offline mode is on (HF_HUB_OFFLINE=1 "
                "or offline=True), so they were not downloaded",
            )
        )
    return _download(ref.repo_id, wanted_revision, allow_patterns, cache, token, progress)


def parse_repo_id(source: str) -> RepoRef | None:
    """`source` split into repo id and revision if it looks like a hub repo id, else None."""
    match = _REPO_RE.fullmatch(source.strip())
    if match is None:
        return None
    try:
        validate_repo_id(match["repo"])
    except HFValidationError:
        return None
    return RepoRef(match["repo"], match["revision"])


def _existing_local_path(source: str) -> Path | None:
    """`source` as a path (with `~` expanded) when something exists there."""
    if not source.strip():
        return None
    path = Path(source).expanduser()
    return path if path.exists() else None


def _pick_revision(ref: RepoRef, revision: str | None) -> str | None:
    """The revision from `org/name@rev` or the argument; two different ones is a config error."""
    if ref.revision is not None and revision is not None and ref.revision != revision:
        raise InvalidArgument(
            "revision",
            f"{ref.repo_id}@{ref.revision} names revision {ref.revision!r} but "
            f"revision={revision!r} was also given; give one",
        )
    return ref.revision if ref.revision is not None else revision


def _cache_dir(cache_dir: str | Path | None) -> Path:
    """The hub cache to use: the argument, else the one huggingface_hub derives from HF_HOME."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(hf_constants.HF_HUB_CACHE)


def _is_offline(offline: bool | None) -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once at import; asking it keeps us in step
    # with what its own HTTP layer will refuse.
    return hf_constants.is_offline_mode() if offline is None else offline


def _from_cache(
    repo_id: str,
    revision: str | None,
    allow_patterns: list[str] | None,
    cache: Path,
    token: str | None,
) -> Path | None:
    """The cached snapshot if it holds the wanted files; never touches the network."""
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache,
            allow_patterns=allow_patterns,
            local_files_only=True,
            token=token,
        )
    except (LocalEntryNotFoundError, OSError, ValueError):
        # Not cached, partly cached or an unreadable cache: all mean "go and get it".
        return None
    snapshot = Path(folder)
    return snapshot if not _unmatched_patterns(snapshot, allow_patterns) else None


def _unmatched_patterns(folder: Path, allow_patterns: list[str] | None) -> list[str]:
    """Patterns that match no file in `folder` (or [""] for an empty folder with no patterns).

    The hub only knows a cached snapshot is incomplete when it cached the repo's
    file listing too; checking the files ourselves also covers hand-built caches.
    """
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    if allow_patterns is None:
        return [] if files else [""]
    return [
        pattern
        for pattern in allow_patterns
        if not list(filter_repo_objects(files, allow_patterns=[pattern]))
    ]


def _download(
    repo_id: str,
    revision: str | None,
    allow_patterns: list[str] | None,
    cache: Path,
    token: str | None,
    progress: bool,
) -> Path:
    """Download the wanted files into the cache; every failure becomes FailedPrecondition."""
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache,
            allow_patterns=allow_patterns,
            token=token,
            tqdm_class=None if progress else _SilentTqdm,
        )
    except Exception as error:
        # The hub also surfaces its HTTP client's transport errors (proxy, TLS,
        # timeouts), whose classes are not part of its API; callers must only ever
        # see a domain error, so everything is translated here.
        reason = _download_failure(error)
        message = _not_available(repo_id, revision, allow_patterns, cache, reason)
        raise FailedPrecondition(message) from error
    snapshot = Path(folder)
    unmatched = _unmatched_patterns(snapshot, allow_patterns)
    if unmatched:
        raise FailedPrecondition(
            f"Hugging Face repo {repo_id!r} (revision {revision or 'main'}) has no files "
            f"matching {unmatched}; downloaded to {snapshot}. Check the repo's file names "
            "or the model config's patterns."
        )
    return snapshot


def _download_failure(error: Exception) -> str:
    """Why a download failed, in words, with the fix that applies to that failure."""
    token_hint = (
        "if the repo is private or gated, accept its terms on huggingface.co and set "
        "HF_TOKEN to a token that can read it"
    )
    # Order matters: GatedRepoError is a RepositoryNotFoundError, both are HfHubHTTPErrors.
    if isinstance(error, GatedRepoError):
        return f"the repo is gated and this token may not read it ({token_hint})"
    if isinstance(error, RepositoryNotFoundError):
        return f"the hub answered that the repo does not exist or is not visible ({token_hint})"
    if isinstance(error, RevisionNotFoundError):
        return "the hub has no such revision (branch, tag or commit) for this repo"
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            return f"the hub refused access (HTTP {status}; {token_hint})"
        return f"the hub answered with an error (HTTP {status}: {_one_line(error)})"
    if isinstance(error, LocalEntryNotFoundError):
        return f"the hub could not be reached and the files are not cached ({_one_line(error)})"
    return f"the download failed ({type(error).__name__}: {_one_line(error)})"


def _not_available(
    repo_id: str,
    revision: str | None,
    allow_patterns: list[str] | None,
    cache: Path,
    reason: str,
) -> str:
    """The full 'weights missing' message: what, where looked, why, and how to fix it."""
    wanted = ", ".join(allow_patterns) if allow_patterns else "all files"
    source = f"{repo_id}@{revision}" if revision else repo_id
    return (
        f"weights for Hugging Face repo {repo_id!r} (revision {revision or 'main'}; "
        f"files: {wanted}) are not available: {reason}. Cache looked in: {cache}. "
        f"To fix: run `speechmesh models pull {source}` on a machine with network access "
        "(into this cache), or set HF_HUB_OFFLINE=0 to allow downloads, or point the "
        "model config at a local path holding the files."
    )


def _one_line(error: BaseException) -> str:
    """An exception's message on one line, short enough to embed in ours."""
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------------ file checks


def require_files(directory: Path, names: list[str]) -> list[Path]:
    """`directory / name` for each name, all of which must exist."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FailedPrecondition(f"weights directory {directory} does not exist or is not a folder")
    paths = [directory / name for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if not path.exists()]
    if missing:
        present = sorted(
            p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()
        )
        raise FailedPrecondition(
            f"weights directory {directory} lacks {_listing(missing)}; "
            f"it holds {_listing(present) if present else 'nothing'}"
        )
    return paths


# ---------------------------------------------------------------------------- loading


def load_state_dict(path: Path) -> dict[str, Any]:
    """The tensors (or nested checkpoint dict) stored in a safetensors or torch file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAFETENSORS_SUFFIXES | TORCH_SUFFIXES:
        known = sorted(SAFETENSORS_SUFFIXES | TORCH_SUFFIXES)
        raise FailedPrecondition(
            f"weights file {path} has an unknown format {suffix or '(no suffix)'!r}; "
            f"expected one of {known}"
        )
    if not path.is_file():
        raise FailedPrecondition(f"weights file {path} does not exist")
    if suffix in SAFETENSORS_SUFFIXES:
        return _load_safetensors(path)
    return _load_torch(path)


def _load_safetensors(path: Path) -> dict[str, Any]:
    """Tensors as torch tensors when torch is installed, else numpy arrays (torch-free pods)."""
    try:
        import torch  # noqa: F401  (only probing whether torch is there)
    except ImportError:
        from safetensors.numpy import load_file as load_numpy

        loader: Any = load_numpy
    else:
        from safetensors.torch import load_file as load_torch

        loader = load_torch
    try:
        tensors: dict[str, Any] = loader(str(path))
    except Exception as error:
        # safetensors raises its own SafetensorError (and OSError) for truncated or
        # corrupt headers; callers get a domain error naming the file.
        raise FailedPrecondition(
            f"weights file {path} is not a readable safetensors file: {_one_line(error)}"
        ) from error
    return tensors


def load_tensor(path: Path) -> Any:
    """A single tensor saved with torch.save (e.g. a speaker embedding), loaded safely."""
    import torch  # lazy, as in _load_torch

    path = Path(path)
    if not path.is_file():
        raise FailedPrecondition(f"tensor file {path} does not exist")
    value = _torch_load(path)
    if not isinstance(value, torch.Tensor):
        raise FailedPrecondition(f"{path} holds a {type(value).__name__}, not a tensor")
    return value


def _load_torch(path: Path) -> dict[str, Any]:
    """A torch checkpoint, refusing anything that needs code to rebuild."""
    checkpoint = _torch_load(path)
    if not isinstance(checkpoint, dict):
        raise FailedPrecondition(
            f"weights file {path} holds a {type(checkpoint).__name__}, not a dict of tensors"
        )
    return checkpoint


def _torch_load(path: Path) -> Any:
    import torch  # lazy: pods that serve only ONNX/safetensors models do not install torch

    try:
        # weights_only=True is explicit, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot undo it.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except UnpicklingError as error:
        raise FailedPrecondition(
            f"weights file {path} is not a plain tensor checkpoint (it needs code to load) "
            "and will not be unpickled; convert it to safetensors with the code that wrote "
            f"it. torch said: {_one_line(error)}"
        ) from error
    except (RuntimeError, OSError, EOFError, ValueError) as error:
        raise FailedPrecondition(
            f"weights file {path} is not a readable torch checkpoint: {_one_line(error)}"
        ) from error
    return checkpoint


# ------------------------------------------------------------------ checkpoint layout


def unwrap(checkpoint: Mapping[str, Any], *path: str) -> dict[str, Any]:
    """The dict at `checkpoint[path[0]][path[1]]...`, e.g. unwrap(ckpt, "model", "generator")."""
    current: Any = checkpoint
    for depth, key in enumerate(path):
        where = "/".join(path[:depth]) or "(top level)"
        if not isinstance(current, Mapping):
            raise FailedPrecondition(
                f"checkpoint entry {where} is a {type(current).__name__}, not a dict; "
                f"cannot look up key {key!r}"
            )
        if key not in current:
            raise FailedPrecondition(
                f"checkpoint has no key {key!r} at {where}; keys there: "
                f"{_listing(sorted(map(str, current)))}"
            )
        current = current[key]
    if not isinstance(current, Mapping):
        raise FailedPrecondition(
            f"checkpoint entry {'/'.join(path)} is a {type(current).__name__}, not a dict"
        )
    return dict(current)


def fold_weight_norm(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """`state_dict` with legacy weight norm pairs (`X.weight_g`, `X.weight_v`) folded into
    plain `X.weight` = g · v / ‖v‖ (norm over every dimension but the first, as
    torch.nn.utils.weight_norm stores it, ConvTranspose included).

    A `weight_g` without its `weight_v` (or the reverse) is a FailedPrecondition.
    """
    import torch  # lazy, as in _load_torch

    folded: dict[str, Any] = {}
    orphans = []
    for key, value in state_dict.items():
        if key.endswith(".weight_v"):
            if key[:-1] + "g" not in state_dict:
                orphans.append(key)
            continue
        if not key.endswith(".weight_g"):
            folded[key] = value
            continue
        partner = key[:-1] + "v"
        if partner not in state_dict:
            orphans.append(key)
            continue
        v = torch.as_tensor(state_dict[partner])
        g = torch.as_tensor(value)
        dims = tuple(range(1, v.dim()))
        folded[key[: -len("_g")]] = v * (g / v.square().sum(dim=dims, keepdim=True).sqrt())
    if orphans:
        raise FailedPrecondition(
            f"weight norm keys without their pair: {_listing(sorted(orphans))}"
        )
    return folded


def strip_prefix(state_dict: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """`state_dict` with `prefix` removed from the keys that start with it.

    Keys without the prefix are kept as they are, so `load_strict` still reports
    them instead of their being dropped unseen.
    """
    return {
        (key[len(prefix) :] if key.startswith(prefix) else key): value
        for key, value in state_dict.items()
    }


def load_strict(module: Any, state_dict: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> None:
    """Load `state_dict` into a torch module; keys and shapes must match exactly.

    Keys matching an `ignore` glob (e.g. "*.num_batches_tracked") are skipped on
    both sides. Any other difference is a FailedPrecondition, never a partial load.
    """
    import torch  # lazy, as in _load_torch

    patterns = list(ignore)
    model_shapes = {
        key: tuple(value.shape)
        for key, value in module.state_dict().items()
        if not _ignored(key, patterns)
    }
    wanted = {key: value for key, value in state_dict.items() if not _ignored(key, patterns)}
    problems = _mismatches(model_shapes, wanted)
    if problems:
        raise FailedPrecondition(
            f"checkpoint does not match {type(module).__name__}: " + "; ".join(problems)
        )
    tensors = {key: torch.as_tensor(value) for key, value in wanted.items()}
    # strict=False only because ignored keys may be absent; every other key was
    # checked above, which the result below confirms.
    result = module.load_state_dict(tensors, strict=False)
    leftover = [k for k in result.missing_keys if not _ignored(k, patterns)]
    leftover += list(result.unexpected_keys)
    if leftover:
        raise FailedPrecondition(f"checkpoint keys not loaded: {_listing(leftover)}")


def _ignored(key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def _mismatches(
    model_shapes: dict[str, tuple[int, ...]], checkpoint: Mapping[str, Any]
) -> list[str]:
    """Readable lines for missing keys, unexpected keys and shape mismatches."""
    missing = sorted(set(model_shapes) - set(checkpoint))
    unexpected = sorted(set(checkpoint) - set(model_shapes))
    shapes = [
        f"{key}: checkpoint {_shape(checkpoint[key])} vs model {list(model_shapes[key])}"
        for key in sorted(set(model_shapes) & set(checkpoint))
        if _shape(checkpoint[key]) != list(model_shapes[key])
    ]
    problems = []
    if missing:
        problems.append(f"missing keys (in model, not in checkpoint): {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys (in checkpoint, not in model): {_listing(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_listing(shapes)}")
    return problems


def _shape(value: Any) -> list[int]:
    # Tensors and numpy arrays both have .shape; a bare Python number is a scalar.
    return list(getattr(value, "shape", ()))


def _listing(items: list[str]) -> str:
    """At most _MAX_LISTED items joined, with a count of the rest."""
    shown = ", ".join(items[:_MAX_LISTED])
    rest = len(items) - _MAX_LISTED
    return f"{shown}, ... and {rest} more ({len(items)} in all)" if rest > 0 else shown
