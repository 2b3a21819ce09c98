"""`speechmesh serve SERVICE` and `speechmesh up`: run servers in the foreground."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer
from rich.console import Console

from speechmesh.cli.supervisor import Supervisor, die_with_supervisor
from speechmesh.runtime import registry
from speechmesh.runtime.auth import AuthConfigError
from speechmesh.runtime.config import ConfigError, MeshConfig, load_config
from speechmesh.runtime.errors import SpeechmeshError
from speechmesh.runtime.server import MeshServer, run_servers

console = Console()

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    envvar="SPEECHMESH_CONFIG",
    help="mesh config YAML (default: the embedded config)",
)
LogLevelOption = typer.Option("info", "--log-level", help="debug, info, warning or error")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _load(config_path: Path | None) -> MeshConfig:
    try:
        return load_config(config_path)
    except ConfigError as error:
        console.print(f"[red]config error[/red]: {error}")
        raise typer.Exit(2) from None


def _announce(servers: list[MeshServer]) -> None:
    for server in servers:
        models = ", ".join(m.id for m in server.pool.models) or "no models"
        # This line is parsed by tests and scripts waiting for the server: keep its shape.
        print(
            f"speechmesh {server.spec.name} listening on {server.host}:{server.port} ({models})",
            flush=True,
        )
        if server.front_end is not None:
            print(
                f"speechmesh {server.spec.name} also serves {server.front_end.address}", flush=True
            )


def _run(services: list[str], config: MeshConfig, port: int | None) -> None:
    try:
        asyncio.run(run_servers(services, config, port=port, on_ready=_announce))
    except (AuthConfigError, ConfigError, SpeechmeshError, OSError) as error:
        console.print(f"[red]cannot start[/red]: {error}")
        raise typer.Exit(2) from None


def serve(
    service: str = typer.Argument(..., help=f"one of: {', '.join(sorted(registry.SERVICES))}"),
    config_path: Path | None = ConfigOption,
    port: int | None = typer.Option(None, "--port", "-p", help="port (0: any free port)"),
    log_level: str = LogLevelOption,
) -> None:
    """Serve one service of the mesh until SIGTERM/Ctrl-C (then drain and stop)."""
    _setup_logging(log_level)
    if service not in registry.SERVICES:
        raise typer.BadParameter(
            f"no service {service!r}; available: {', '.join(registry.SERVICES)}"
        )
    die_with_supervisor()
    _run([service], _load(config_path), port)


def up(config_path: Path | None = ConfigOption, log_level: str = LogLevelOption) -> None:
    """Bring up the mesh: every configured service as a child process, the gateway in front.

    Waits until all are SERVING, restarts a child that dies, and drains them all on
    Ctrl-C or SIGTERM.
    """
    _setup_logging(log_level)
    config = _load(config_path)
    services = [name for name in config.services if name in registry.SERVICES]
    if not services:
        console.print("[red]the config names no service this installation can run[/red]")
        raise typer.Exit(2)
    try:
        supervisor = Supervisor(services, config, config_path, log_level)
    except ConfigError as error:
        console.print(f"[red]cannot start[/red]: {error}")
        raise typer.Exit(2) from None
    raise typer.Exit(supervisor.run())
