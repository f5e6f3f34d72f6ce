"""Running `orcon` commands in-process from async tests (typer's CliRunner, in a thread:
each command runs its own event loop) against the `stack` fixture's real nats-server and
broker: `orcon(stack, ARGS...)` or `cli(stack)(ARGS...)`, plus what the tests read back
(a body file, a command's JSON, a printed message id, the CLI's store)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from typer.testing import CliRunner, Result

from broker.hosting.stack import DevStack
from clients.cli.main import app
from clients.sdk.store import Store
from keys.keyfile import load_identity
from schemas import Body

Orcon = Callable[..., Awaitable[Result]]


async def orcon(stack: DevStack, *args: str) -> Result:
    """`orcon ARGS --data-dir STACK`; wide columns so ids are never folded."""
    return await cli(stack)(*args)


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


def message_id(output: str, prefix: str = "message") -> str:
    """The id a command printed after `prefix` (e.g. "message 0193...")."""
    m = re.search(rf"{prefix}:? (\S+)", output)
    assert m, output
    return m.group(1)


def cli_store(stack: DevStack, agency: str) -> Store:
    """The agency's store as the CLI keeps it (DATA_DIR/stores/AGENCY.db)."""
    assert stack.connection is not None
    key = stack.connection.credentials(agency).key
    assert key is not None
    identity = load_identity(Path(key), stack.passphrase())
    return Store(stack.data_dir / "stores" / f"{agency}.db", identity)
