"""`speechmesh models ...`: what a server (or the whole mesh, through the gateway) hosts."""

from __future__ import annotations

import json
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
    rpc_errors,
)
from speechmesh.cli.serve import ConfigOption
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime import weights
from speechmesh.runtime.config import ConfigError, load_config
from speechmesh.runtime.errors import SpeechmeshError

app = typer.Typer(help="Inspect the models a server hosts.", no_args_is_help=True)
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


@app.command("pull")
def pull(
    names: list[str] = typer.Argument(
        None, help="model ids from the config or hub repo ids (default: every configured model)"
    ),
    config_path: Path | None = ConfigOption,
) -> None:
    """Download model weights into the Hugging Face cache, with progress bars."""
    try:
        config = load_config(config_path)
    except ConfigError as error:
        console.print(f"[red]config error[/red]: {error}")
        raise typer.Exit(2) from None
    configured = {m.id: m for service in config.services.values() for m in service.models}
    failed = False
    for name in names or list(configured):
        model = configured.get(name)
        source = model.source if model is not None else name
        if source is None:
            console.print(f"{name}: ships inside an installed wheel; nothing to pull")
            continue
        try:
            path = weights.resolve(source, offline=False, progress=True)
        except SpeechmeshError as error:
            console.print(f"[red]{name}[/red]: {error}")
            failed = True
            continue
        console.print(f"{name}: {path}")
    if failed:
        raise typer.Exit(1)
