"""Life-cycle commands after delivery: use, consent, forward, purge, requests, alerts."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the main `orcon` app."""
