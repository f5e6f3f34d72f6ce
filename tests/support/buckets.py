"""The rollback attacks' shared setup: a service-credential holder (the operator's,
which may write the directory and registry buckets) reads and writes a bucket's value
straight, bypassing every signing tool, and the tests watch the audit log for the
brokers' verdicts (`key_changed` / `policy_changed` events with an action)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from broker.audit.events import AuditEvent
from broker.hosting.stack import DevStack
from schemas.events import EventType
from tests.support.attacks import audit_events


async def read_value(stack: DevStack, bucket: str, key: str) -> bytes:
    """The value in force, as the attacker sees it."""
    nc = await stack.operator_connection("evil")
    try:
        value = (await (await nc.jetstream().key_value(bucket)).get(key)).value
    finally:
        await nc.close()
    assert value is not None, f"{bucket}/{key} is empty"
    return value


async def write_value(stack: DevStack, bucket: str, key: str, value: bytes) -> None:
    """The attack: `value` written over the one in force."""
    nc = await stack.operator_connection("evil")
    try:
        await (await nc.jetstream().key_value(bucket)).put(key, value)
    finally:
        await nc.close()


async def changes(stack: DevStack, event: EventType, action: str) -> list[AuditEvent]:
    """The log's `event` entries (key_changed, policy_changed) with `action`."""
    return [e for _, e in await audit_events(stack)
            if e.type == event and e.details.get("action") == action]


async def wait_changes(stack: DevStack, event: EventType, action: str, want: int = 1,
                       timeout: float = 10.0) -> list[AuditEvent]:
    """`changes` polled until there are at least `want` (an AssertionError if not)."""
    for _ in range(int(timeout / 0.1)):
        found = await changes(stack, event, action)
        if len(found) >= want:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {want} {event}/{action} events in the log")


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll `predicate` until it holds (an AssertionError if it does not in time)."""
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")
