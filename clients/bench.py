"""`orcon bench`: throughput, latency, fan-out and peers measured in one run."""

from __future__ import annotations

import typer


def bench(
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    quick: bool = typer.Option(False, "--quick", help="a short run for CI smoke use"),
) -> None:
    """Measure orcon on this machine (starts and stops its own NATS and brokers)."""
    raise typer.Exit(2)
