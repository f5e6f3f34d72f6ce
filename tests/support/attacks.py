"""Helpers of the attack tests (tests/security/): a connected client, the audit log as
events, the state of the submission queue, and hand-made submissions."""

from __future__ import annotations

import asyncio
from datetime import datetime

import msgspec

import schemas
from broker.audit.events import AuditEvent, decode_record
from broker.hosting.stack import DevStack
from broker.routing.fairness import queue_state
from clients.sdk.client import AgencyClient
from keys.envelope import seal
from schemas import examples
from transport import subjects as s


async def connect(stack: DevStack, agency: str) -> AgencyClient:
    assert stack.connection is not None
    return await AgencyClient.connect(stack.connection, agency, passphrase=stack.passphrase())


async def audit_events(stack: DevStack) -> list[tuple[int, AuditEvent]]:
    """Every entry of the AUDIT stream as (encoded size, event)."""
    nc = await stack.broker_connection("test-audit-reader")
    js = nc.jetstream()
    out: list[tuple[int, AuditEvent]] = []
    try:
        info = await js.stream_info(s.AUDIT_STREAM)
        if info.state.last_seq:
            sub = await js.subscribe(s.AUDIT_SUBJECT, ordered_consumer=True)
            try:
                while len(out) < info.state.last_seq:
                    msg = await sub.next_msg(timeout=5)
                    out.append((len(msg.data), decode_record(msg.data).event))
            finally:
                await sub.unsubscribe()
    finally:
        await nc.close()
    return out


async def wait_audit(stack: DevStack, pred: object, timeout: float = 10.0
                     ) -> list[tuple[int, AuditEvent]]:
    """The audit log, polled until `pred(entries)` holds (or the last read on timeout)."""
    assert callable(pred)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        entries = await audit_events(stack)
        if pred(entries) or loop.time() > end:
            return entries
        await asyncio.sleep(0.25)


async def submit_queue(stack: DevStack) -> tuple[int, int]:
    """(submissions not yet acknowledged by a broker, redeliveries so far)."""
    nc = await stack.broker_connection("test-queue-reader")
    try:
        state = await queue_state(nc.jetstream())
        return state.pending + state.ack_pending, state.redelivered
    finally:
        await nc.close()


async def wait_outcomes(client: AgencyClient, pred: object, timeout: float = 15.0
                        ) -> list[schemas.Outcome]:
    """Outcomes accumulated until `pred(outcomes)` holds, or time is up."""
    assert callable(pred)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    got: list[schemas.Outcome] = []
    while loop.time() < end and not pred(got):
        got += await client.outcomes(limit=500, timeout=0.5)
    return got


def signed(client: AgencyClient, to: list[str], *, created_at: datetime | None = None,
           recipients: list[str] | None = None, message_id: str | None = None,
           body: schemas.Body | None = None) -> tuple[schemas.Header, bytes]:
    """A submission signed with the client's real key whose header says what the test
    wants: `recipients` (default `to`), `created_at`, `message_id`. Sealed to `to`."""
    b = body or examples.mekong_route_report()
    header = client.draft(b, category=schemas.Category.ROUTES, level=schemas.Level.RESTRICTED,
                          to=to)
    changes: dict[str, object] = {}
    if created_at is not None:
        changes["created_at"] = created_at
    if recipients is not None:
        changes["recipients"] = recipients
    if message_id is not None:
        changes["id"] = message_id
    header = msgspec.structs.replace(header, **changes)
    now = client.clock()
    keys = [r for a in to for r in client.directory.recipients_for(a, now)]
    env = seal(schemas.encode(header), schemas.encode(b), keys, client.identity)
    return header, schemas.encode_envelope(env)
