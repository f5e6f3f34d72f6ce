"""`orcon schema ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="schema commands", no_args_is_help=True)
