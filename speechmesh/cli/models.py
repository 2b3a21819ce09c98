"""`speechmesh models ...`: what a server (or the whole mesh, through the gateway) hosts."""

from __future__ import annotations

import json

import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from speechmesh.cli.common import AddressOption, ApiKeyOption, call_metadata, channel, rpc_errors
from speechmesh.models.v1 import models_pb2, models_pb2_grpc

app = typer.Typer(help="Inspect the models a server hosts.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_models(
    address: str = AddressOption,
    api_key: str | None = ApiKeyOption,
    as_json: bool = typer.Option(False, "--json", help="print the response as JSON"),
) -> None:
    """List the models at ADDRESS with their state."""
    with rpc_errors(), channel(address) as chan:
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
