"""Running `orcon` commands against a DevStack fixture from an async test: each command
runs its own event loop, so it is invoked from a thread (typer's CliRunner)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import msgspec
from typer.testing import CliRunner, Result

from broker.hosting.stack import DevStack
from clients.cli.main import app
from clients.sdk.store import Store
from keys.keyfile import load_identity
from schemas import Body


async def orcon(stack: DevStack, *args: str) -> Result:
    """`orcon ARGS --data-dir STACK`; wide columns so ids are never folded."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, app, [*args, "--data-dir", str(stack.data_dir)],
        env={"COLUMNS": "250"})


def body_file(tmp: Path, body: Body, name: str = "body.json") -> str:
    path = tmp / name
    path.write_bytes(msgspec.json.encode(body))
    return str(path)


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
