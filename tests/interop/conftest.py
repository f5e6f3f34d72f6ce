"""Fixtures for the interop tests: Holders (SDK + encrypted store) against the real
stack of tests/conftest.py, and the real AUDIT stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from broker import subjects as s
from broker.audit.events import AuditEvent, decode_record
from broker.stack import DevStack
from clients.lifecycle import Holder


@pytest.fixture
async def holder(stack: DevStack, tmp_path: Path) -> AsyncIterator[
        Callable[[str], Awaitable[Holder]]]:
    opened: list[Holder] = []

    async def make(agency_id: str) -> Holder:
        assert stack.connection is not None
        h = await Holder.open_for(stack.connection, agency_id,
                                  tmp_path / "stores" / f"{agency_id}.db",
                                  passphrase=stack.passphrase())
        opened.append(h)
        return h

    yield make
    for h in opened:
        await h.close()


async def _sync_until(h: Holder, message_id: str, timeout: float = 8.0) -> None:
    """Sync until `message_id` is in `h`'s store, or fail."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        await h.sync(timeout=0.5)
        if h.store.get(message_id) is not None:
            return
    raise AssertionError(f"{h.agency}: {message_id} did not arrive")


async def _audit_events(stack: DevStack, pred: Callable[[list[AuditEvent]], bool],
                       timeout: float = 8.0) -> list[AuditEvent]:
    """Every event in the AUDIT stream, polled until `pred` holds (or the timeout)."""
    nc = await stack.broker_connection("test-interop-audit")
    js = nc.jetstream()
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    try:
        while True:
            events: list[AuditEvent] = []
            info = await js.stream_info(s.AUDIT_STREAM)
            if info.state.last_seq:
                sub = await js.subscribe(s.AUDIT_SUBJECT, ordered_consumer=True)
                try:
                    while len(events) < info.state.last_seq:
                        msg = await sub.next_msg(timeout=5)
                        events.append(decode_record(msg.data).event)
                finally:
                    await sub.unsubscribe()
            if pred(events) or loop.time() > end:
                return events
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


@pytest.fixture
def sync_until() -> Callable[..., Awaitable[None]]:
    return _sync_until


@pytest.fixture
def audit() -> Callable[..., Awaitable[list[AuditEvent]]]:
    return _audit_events
