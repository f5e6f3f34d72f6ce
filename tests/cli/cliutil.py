"""Helpers for the person-facing CLI tests: `orcon(stack, ...)` runs one command
in-process (typer's CliRunner, in a thread: each command runs its own event loop)
against the `stack` fixture's real nats-server and broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from typer.testing import CliRunner, Result

from broker.hosting.stack import DevStack
from clients.cli.main import app
from schemas import Body

Orcon = Callable[..., Awaitable[Result]]


def cli(stack: DevStack) -> Orcon:
    """`await cli(stack)(ARGS...)` runs `orcon ARGS --data-dir STACK`."""

    async def run(*args: str, data_dir: bool = True) -> Result:
        argv = [*args, "--data-dir", str(stack.data_dir)] if data_dir else list(args)
        return await asyncio.to_thread(CliRunner().invoke, app, argv,
                                       env={"COLUMNS": "250"})
    return run


def body_file(tmp: Path, body: Body, name: str = "body.json") -> str:
    path = tmp / name
    path.write_bytes(msgspec.json.encode(body))
    return str(path)


def json_out(result: Result) -> Any:
    """The one JSON document a `--json` command printed on stdout."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
