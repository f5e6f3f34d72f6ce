"""Run the console: open the agency's desk (or the auditor's), serve it on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable
from pathlib import Path

import uvicorn

from clients.console.app import create_app
from clients.console.desk import AuditDesk, Desk
from clients.console.security import Sessions
from clients.sdk.holder import Holder
from policies.federation import FederationError, load_federation
from transport.connection import load_connection


class ConsoleError(Exception):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def store_path(data_dir: Path, agency: str) -> Path:
    # The same store as the CLI's life-cycle commands (clients/cli/life.py).
    return data_dir / "stores" / f"{agency}.db"


async def serve(data_dir: Path, agency: str, *, host: str = "127.0.0.1", port: int = 0,
                passphrase: str | None = None, allow_remote: bool = False,
                on_ready: Callable[[str], None] = print,
                stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM). `on_ready` gets the sign-in URL,
    which carries the session token: it goes to the officer's terminal, nowhere else."""
    if not is_loopback(host) and not allow_remote:
        raise ConsoleError(f"--host {host} is not a loopback address; the console serves "
                           "decrypted content without TLS, so it binds to loopback unless "
                           "--allow-remote is given")
    conn = load_connection(data_dir)
    creds = conn.credentials(agency)
    desk: Desk | AuditDesk
    if creds.key is None:
        desk = AuditDesk(conn, agency, data_dir / "audit" / agency)
    else:
        holder = await Holder.open_for(conn, agency, store_path(data_dir, agency),
                                       passphrase=passphrase)
        try:
            federation = load_federation(conn.federation)
        except FederationError:
            federation = None  # pickers then list the directory's agencies only
        desk = Desk(holder, conn, federation)
        desk.start()
    sessions = Sessions()
    hosts: set[str] = set()
    app = create_app(desk, sessions, hosts)
    # No access log: URLs carry message ids and search words.
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning",
                            lifespan="off", server_header=False,
                            timeout_graceful_shutdown=2)  # open event streams never end
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise ConsoleError("the console did not start")
            await asyncio.sleep(0.05)
        bound = server.servers[0].sockets[0].getsockname()[1]
        names = {host, "127.0.0.1", "localhost"} if is_loopback(host) else {host}
        hosts.update(f"{n}:{bound}" for n in names)
        on_ready(f"http://{host}:{bound}/login?token={sessions.token}")
        if stop is not None:
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            waiter.cancel()
        await task
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)
        if isinstance(desk, Desk):
            await desk.stop()
            await desk.holder.close()
