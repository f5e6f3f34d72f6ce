"""`orcon ops ...`: what operators of a running stack look at."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from nats.js.errors import NotFoundError

from broker.hosting.node import BROKER_NAME
from broker.routing.deadletter import DeadLetter, list_dead_letters
from transport.connection import connect_nats, load_connection

app = typer.Typer(help="operator commands", no_args_is_help=True)

DataDir = Annotated[Path, typer.Option("--data-dir", "-d", help="the stack's data directory")]


@app.command("dead-letters")
def dead_letters(
    data_dir: DataDir,
    limit: Annotated[int, typer.Option(help="show the newest N")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Submissions no broker could finish after the delivery limit (newest last).
    Every one is also in the audit log as `dead_lettered`; the metric
    `orcon_dead_letters_total` counts them."""
    conn = load_connection(data_dir)
    if not conn.broker_nkey:
        typer.echo("error: this connection.json has no operator (broker) credentials", err=True)
        raise typer.Exit(1)

    async def fetch() -> list[DeadLetter]:
        assert conn.broker_nkey is not None
        nc = await connect_nats(conn, BROKER_NAME, conn.broker_nkey, service=True,
                                label="ops", max_reconnect_attempts=2)
        try:
            return await list_dead_letters(nc, limit)
        finally:
            await nc.close()

    try:
        letters = asyncio.run(fetch())
    except NotFoundError:
        typer.echo("error: this stack has no DEADLETTER stream yet (its brokers predate "
                   "dead letters; start one of this version)", err=True)
        raise typer.Exit(1) from None
    # Plain text on purpose: fields come from submissions and are never markup.
    if as_json:
        for d in letters:
            typer.echo(json.dumps(dataclasses.asdict(d)))
        return
    typer.echo(f"{len(letters)} dead letter(s)")
    for d in letters:
        typer.echo(f"#{d.seq} {d.at} sender={d.sender} message_id={d.message_id or '-'} "
                   f"attempts={d.attempts} size={d.size} sha256={d.sha256[:16]} "
                   f"broker={d.broker} error={d.error!r}")
