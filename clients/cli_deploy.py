"""`orcon deploy render OUT_DIR`: every configuration of a federation deployment (hub
cluster, one leafnode per country, credentials) from the federation file."""

from __future__ import annotations

import typer

app = typer.Typer(help="Deployment: render the hub and national leafnode configurations.",
                  no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="deploy")
