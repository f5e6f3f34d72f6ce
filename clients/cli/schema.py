"""`orcon schema ...` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.codec import validate_json
from schemas.jsonschema_export import export as export_schemas

app = typer.Typer(help="schema commands", no_args_is_help=True)


@app.command("export")
def export_cmd(
    directory: Annotated[Path, typer.Argument(help="directory to write the JSON Schemas to")],
) -> None:
    """Write one JSON Schema (draft 2020-12) per message kind, plus header and message."""
    for path in export_schemas(directory):
        typer.echo(str(path))


@app.command("validate")
def validate_cmd(
    file: Annotated[Path, typer.Argument(help='JSON: {"header": ..., "body": ...}, or one part')],
) -> None:
    """Validate a JSON message, header or body; print every error, exit 1 if any."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        typer.echo(f"{file}: cannot read: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    errors = validate_json(data)
    for err in errors:
        typer.echo(f"{file}: {err}")
    if errors:
        typer.echo(f"{file}: {len(errors)} error(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{file}: valid")
