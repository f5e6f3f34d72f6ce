"""Per-agency quotas, enforced by nats-server on each agency's own account (connections,
subscriptions, payload) and on its own submission subject (submissions waiting for a
broker). A flooding agency exhausts its quota, never another agency's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import APIError

from broker.hosting.provision import AccountLimits
from broker.hosting.stack import DevStack
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE
from tests.support.raw_nats import connect_as
from transport import subjects as s

FLOODER, VICTIM = "KH-AHTJP", "VN-MPS"
LIMITS = AccountLimits(max_connections=2, max_subscriptions=20, max_payload=64 * 1024)
PENDING = 5


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[DevStack]:
    # No broker: submissions stay queued, so the pending quota is what is measured.
    async with DevStack(tmp_path / "s", SAMPLE, brokers=0, fast_kdf=True, limits=LIMITS,
                        max_pending_submissions=PENDING) as st:
        yield st


class Errors:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def cb(self, exc: Exception) -> None:
        self.seen.append(str(exc).lower())


async def connect(stack: DevStack, agency: str, errors: Errors | None = None) -> NATS:
    return await connect_as(stack, agency, (errors or Errors()).cb, max_reconnect_attempts=0)


async def test_connections_are_capped_per_agency(limited: DevStack) -> None:
    held = [await connect(limited, FLOODER) for _ in range(LIMITS.max_connections)]
    try:
        errors = Errors()
        with pytest.raises(Exception):  # noqa: B017 - nats-py wraps the server's -ERR variously
            await connect(limited, FLOODER, errors)
        assert any("maximum account active connections" in e for e in errors.seen), errors.seen
        # The flood is the flooder's problem: another agency still connects.
        other = await connect(limited, VICTIM)
        assert other.is_connected
        await other.close()
    finally:
        for nc in held:
            await nc.close()


async def _closed_by_server(nc: NATS) -> bool:
    for _ in range(60):
        if not nc.is_connected:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_payload_is_capped_per_agency_account(limited: DevStack) -> None:
    nc = await connect(limited, FLOODER)
    services = await limited.broker_connection("check")
    try:
        ack = await nc.jetstream(timeout=2).publish(s.submit(FLOODER),
                                                    b"x" * (LIMITS.max_payload // 2))
        assert ack.stream == s.SUBMIT_STREAM
        # Above the account's limit (the server's own is 8 MiB): the server closes the
        # connection ("maximum payload exceeded") before anything reaches a stream.
        js = services.jetstream()
        last = (await js.stream_info(s.SUBMIT_STREAM)).state.last_seq
        with contextlib.suppress(nats.errors.ConnectionClosedError):
            await nc.publish(s.submit(FLOODER), b"x" * (LIMITS.max_payload + 1))
            await nc.flush(timeout=1)
        assert await _closed_by_server(nc)
        assert (await js.stream_info(s.SUBMIT_STREAM)).state.last_seq == last
    finally:
        await nc.close()
        await services.close()
    other = await connect(limited, VICTIM)
    try:
        ack = await other.jetstream(timeout=2).publish(s.submit(VICTIM), b"honest")
        assert ack.stream == s.SUBMIT_STREAM
    finally:
        await other.close()


async def test_subscriptions_are_capped_per_agency(limited: DevStack) -> None:
    nc = await connect(limited, FLOODER)
    other = await connect(limited, VICTIM)
    try:
        for i in range(LIMITS.max_subscriptions + 5):
            with contextlib.suppress(nats.errors.ConnectionClosedError):
                await nc.subscribe(f"{s.inbox_prefix(FLOODER)}.x{i}")
        with contextlib.suppress(Exception):
            await nc.flush(timeout=1)
        assert await _closed_by_server(nc)  # "maximum subscriptions exceeded"
        for i in range(5):
            await other.subscribe(f"{s.inbox_prefix(VICTIM)}.x{i}")
        await other.flush(timeout=2)
        assert other.is_connected
    finally:
        await nc.close()
        await other.close()


async def test_pending_submissions_are_capped_per_agency(limited: DevStack) -> None:
    flooder, victim = await connect(limited, FLOODER), await connect(limited, VICTIM)
    try:
        js = flooder.jetstream(timeout=2)
        for i in range(PENDING):
            await js.publish(s.submit(FLOODER), f"junk {i}".encode())
        with pytest.raises(APIError) as refused:
            await js.publish(s.submit(FLOODER), b"one too many")
        assert "maximum messages per subject" in str(refused.value).lower()
        # The victim's submissions are still accepted while the flooder is capped.
        ack = await victim.jetstream(timeout=2).publish(s.submit(VICTIM), b"honest")
        assert ack.stream == s.SUBMIT_STREAM
    finally:
        await flooder.close()
        await victim.close()
