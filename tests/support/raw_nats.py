"""Raw NATS connections (no SDK) as one principal, for the tests that attack the
server's permissions, and the permission violations the server reports to them.

Every connection goes through the one dial (transport.connection.connect_nats): the
principal's own credential and reply inboxes, the TLS of connection.json. It never
reconnects: an attack test wants the server's verdict, not a retry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS

from broker.hosting.stack import DevStack
from transport.connection import connect_nats

ErrorCallback = Callable[[Exception], Awaitable[None]]


class Violations:
    """Collects what the server reports to a connection; `wait_for` a violation."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc).lower())

    async def wait_for(self, needle: str, timeout: float = 3.0) -> str:
        for _ in range(int(timeout / 0.05)):
            for e in self.errors:
                if "permissions violation" in e and needle.lower() in e:
                    return e
            await asyncio.sleep(0.05)
        raise AssertionError(f"no permissions violation for {needle!r}; got {self.errors}")


async def _ignore(_: Exception) -> None:
    """Permission errors are expected; what a test checks is where answers land."""


async def connect_as(stack: DevStack, principal: str, error_cb: ErrorCallback = _ignore,
                     **options: Any) -> NATS:
    """An agency's or auditor's own credential."""
    assert stack.connection is not None
    return await connect_nats(stack.connection, principal,
                              stack.connection.credentials(principal).nkey,
                              error_cb=error_cb, allow_reconnect=False, **options)


async def connect_role(stack: DevStack, role: str, error_cb: ErrorCallback = _ignore,
                       **options: Any) -> NATS:
    """A service role's own credential (broker, sequencer, ack-watcher, operator)."""
    assert stack.services is not None
    return await stack.services.dial(role, f"test-{role}", error_cb=error_cb,
                                     allow_reconnect=False, **options)
