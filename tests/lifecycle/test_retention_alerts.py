"""Retention, focal points, urgent acknowledgments and request deadlines, against a real
nats-server: expired messages are purged with a signed receipt in the audit log (on
demand and on client start); an urgent alert reaches the matching focal point and not
the non-matching one; an unacknowledged urgent message is re-notified and flagged to its
sender; requests show as overdue on both sides until a threaded reply arrives."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from broker.hosting.stack import DevStack
from broker.routing.acks import AckWatcher
from clients.sdk.holder import Holder
from schemas import Category, Level, Restrictions, Topics, Urgency, UrgencyReason, examples
from schemas.events import EventType

HolderFactory = Callable[[str], Awaitable[Holder]]
URGENT: dict[str, Any] = {"urgency": Urgency.URGENT,
                          "urgency_reasons": [UrgencyReason.SUSPECT_ESCAPING]}


async def test_expired_messages_are_purged_with_signed_receipts(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    soon = datetime.now(UTC) + timedelta(seconds=2)
    later = datetime.now(UTC) + timedelta(days=1)
    a = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                      level=Level.RESTRICTED, restrictions=Restrictions(expires_at=soon),
                      to=["KH-AHTJP"])
    b = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                      level=Level.RESTRICTED, restrictions=Restrictions(expires_at=later),
                      to=["KH-AHTJP"])
    await sync_until(kh, lambda r: {a.id, b.id} <= {x.id for x in r.new})
    # At rest the content is encrypted: the narrative is nowhere in the database file.
    assert b"Tachileik" not in kh.store.path.read_bytes()
    assert sqlite3.connect(kh.store.path).execute(
        "SELECT count(*) FROM messages WHERE kind = 'intel_report'").fetchone() == (2,)

    # On client start: the first message has expired by then.
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    kh2 = await holder("KH-AHTJP")
    assert kh2.store.get(a.id) is None and kh2.store.get(b.id) is not None
    # `orcon purge` at a later time: the second one goes too.
    assert await kh2.purge(now=later + timedelta(seconds=1)) == [b.id]
    assert kh2.store.get(b.id) is None

    def done(evs: list[Any]) -> bool:
        return bool(sum(e.type == EventType.PURGED for e in evs) >= 2)

    purged = [e for e in await audit(stack, done) if e.type == EventType.PURGED]
    assert {(e.message_id, e.actor, e.counterpart, e.details["reason"]) for e in purged} == {
        (a.id, "KH-AHTJP", "TH-AHTD", "expired"), (b.id, "KH-AHTJP", "TH-AHTD", "expired")}
    got = await sync_until(th, lambda r: sum(x.kind == "purge_receipt" for x in r.new) >= 2)
    assert {x.header.act.message_id for x in got.new if x.header.act} == {a.id, b.id}


async def test_urgent_alert_reaches_matching_focal_point_only(
        holder: HolderFactory, sync_until: Any) -> None:
    th = await holder("TH-AHTD")
    blo, bgc = await holder("TH-BLO-CHIANGSAEN"), await holder("VN-BGC")
    # Category b (groups), route through LA: matches TH-BLO-CHIANGSAEN's route filter;
    # VN-BGC subscribes to categories a and d only (and would be permitted by policy).
    alert = await th.send(examples.arrest_alert(), category=Category.GROUPS,
                          level=Level.RESTRICTED, to=["KH-AHTJP"],
                          topics=Topics(route_countries=["LA"]), **URGENT)
    assert alert.recipients == ["KH-AHTJP", "TH-BLO-CHIANGSAEN"]
    got = await sync_until(blo, lambda r: any(x.id == alert.id for x in r.new))
    row = next(x for x in got.new if x.id == alert.id)
    assert row.header.urgency == Urgency.URGENT and row.header.sender == "TH-AHTD"
    assert (await bgc.sync(timeout=0.5)).new == []
    # The reverse: category a, priority, route through VN: VN-BGC only.
    other = await th.send(examples.arrest_alert(), category=Category.ROUTES,
                          level=Level.RESTRICTED, to=["KH-AHTJP"],
                          topics=Topics(route_countries=["VN"]), urgency=Urgency.PRIORITY)
    assert other.recipients == ["KH-AHTJP", "VN-BGC"]
    await sync_until(bgc, lambda r: any(x.id == other.id for x in r.new))
    assert (await blo.sync(timeout=0.5)).new == []


async def test_unacknowledged_urgent_message_is_renotified_and_flagged(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    now = [datetime.now(UTC)]
    nc = await stack.broker_connection("ack-watch")
    watcher = AckWatcher(nc, timeout=timedelta(minutes=15), clock=lambda: now[0])
    await watcher.start(loop=False)
    try:
        urgent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                               level=Level.RESTRICTED, to=["KH-AHTJP"], **URGENT)
        await sync_until(kh, lambda r: any(x.id == urgent.id for x in r.new))
        for _ in range(100):
            if (urgent.id, "KH-AHTJP") in watcher.pending:
                break
            await asyncio.sleep(0.05)
        assert await watcher.tick() == []  # not yet due
        now[0] += timedelta(minutes=16)
        assert await watcher.tick() == [(urgent.id, "KH-AHTJP")]
        got = await sync_until(kh, lambda r: urgent.id in r.reminders)
        assert got.new == [] and kh.get(urgent.id).reminders == 1
        flagged = []
        for _ in range(20):
            flagged += [o for o in await th.client.outcomes(timeout=0.3)
                        if o.status == "unacknowledged"]
            if flagged:
                break
        assert flagged[0].message_id == urgent.id
        assert [(r.recipient, r.rule) for r in flagged[0].refused] == [
            ("KH-AHTJP", "ack.overdue")]
        await kh.open(urgent.id)  # acknowledges
        for _ in range(100):
            if (urgent.id, "KH-AHTJP") not in watcher.pending:
                break
            await asyncio.sleep(0.05)
        now[0] += timedelta(minutes=30)
        assert await watcher.tick() == []
    finally:
        await watcher.stop()
        await nc.close()


async def test_requests_overdue_on_both_sides_until_a_threaded_reply(
        holder: HolderFactory, sync_until: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    req = await th.send(examples.vessel_by_sea(), category=Category.ROUTES,
                        level=Level.RESTRICTED, to=["KH-AHTJP"])
    await sync_until(kh, lambda r: any(x.id == req.id for x in r.new))
    day = req.created_at + timedelta(hours=25)  # "expeditiously": 24 h by default
    assert [r.id for r in th.requests(overdue_only=True, now=req.created_at)] == []
    for side, direction in ((th, "out"), (kh, "in")):
        (status,) = side.requests(overdue_only=True, now=day)
        assert (status.id, status.direction, status.overdue) == (req.id, direction, True)
        assert status.due_at == req.created_at + timedelta(hours=24)
    rep = await kh.reply(req.id, examples.reply())
    assert rep.in_reply_to == req.id and rep.thread == req.id
    await sync_until(th, lambda r: any(x.id == rep.id for x in r.new))
    assert th.requests(overdue_only=True, now=day) == []
    assert kh.requests(overdue_only=True, now=day) == []
    # MLA: the date the requester states is the deadline.
    mla = msgspec.structs.replace(examples.EXAMPLES["mla_request"](),
                                  respond_by=req.created_at + timedelta(days=3))
    sent = await th.send(mla, category=Category.GROUPS, level=Level.RESTRICTED,
                         to=["KH-AHTJP"])
    (status,) = [r for r in th.requests() if r.id == sent.id]
    assert status.due_at == req.created_at + timedelta(days=3)
