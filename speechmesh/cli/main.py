"""Entry point of the `speechmesh` command: wires the subcommands, does no work itself."""

from __future__ import annotations

import typer

from speechmesh.cli import conversion, models, say, serve, transcribe, vad

app = typer.Typer(
    name="speechmesh",
    help="A gRPC streaming mesh that serves speech AI.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve.serve)
app.command()(serve.up)
app.command()(vad.vad)
app.command()(transcribe.transcribe)
app.command()(say.say)
app.command()(conversion.embed)
app.command()(conversion.restore)
app.command()(conversion.convert)
app.add_typer(models.app, name="models")

if __name__ == "__main__":
    app()
