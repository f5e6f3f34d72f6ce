"""Issue 15 item 4: reading is never silent or lossy. Whichever command fetched new
deliveries (requests, purge, use, consent, forward, alerts watch), they are counted
with the command that shows them, `orcon inbox` shows them later, and each is
acknowledged (signed, audited) when first opened. Real nats-server and broker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console

from broker.audit.events import AuditEvent
from broker.hosting.stack import DevStack
from clients.sdk.alerts import watch
from clients.sdk.holder import Holder
from schemas import Category, Level, Purpose, Restrictions, examples
from schemas.events import EventType
from tests.support.cli import orcon

HolderFactory = Callable[[str], Awaitable[Holder]]
Audit = Callable[..., Awaitable[list[AuditEvent]]]


def _acked(events: list[AuditEvent], mid: str, holder: str) -> bool:
    return any(e.type is EventType.ACKNOWLEDGED and e.message_id == mid and e.actor == holder
               for e in events)


async def _send_report(th: Holder, to: str = "KH-AHTJP") -> str:
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=[to],
                         restrictions=Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS]))
    return sent.id


async def _delivered(stack: DevStack, audit: Audit, mid: str) -> None:
    await audit(stack, lambda ev: any(e.type is EventType.DELIVERED and e.message_id == mid
                                      for e in ev))


async def test_deliveries_fetched_by_requests_or_purge_are_counted_then_shown_by_inbox(
        stack: DevStack, holder: HolderFactory, audit: Audit) -> None:
    th = await holder("TH-AHTD")
    first = await _send_report(th)
    await _delivered(stack, audit, first)
    reqs = await orcon(stack, "requests", "--as", "KH-AHTJP")
    assert reqs.exit_code == 0, reqs.output
    assert "1 new message" in reqs.output and "orcon inbox" in reqs.output, reqs.output

    second = await _send_report(th)
    await _delivered(stack, audit, second)
    purged = await orcon(stack, "purge", "--as", "KH-AHTJP")
    assert purged.exit_code == 0, purged.output
    assert "2 new messages" in purged.output, purged.output

    inbox = await orcon(stack, "inbox", "--as", "KH-AHTJP", "--json", "--wait", "0.5")
    assert inbox.exit_code == 0, inbox.output
    assert first in inbox.output and second in inbox.output, inbox.output
    events = await audit(stack, lambda ev: _acked(ev, first, "KH-AHTJP")
                         and _acked(ev, second, "KH-AHTJP"))
    assert _acked(events, first, "KH-AHTJP") and _acked(events, second, "KH-AHTJP")

    again = await orcon(stack, "inbox", "--as", "KH-AHTJP", "--wait", "0.5")
    assert again.exit_code == 0 and "no new messages" in again.output, again.output


async def test_use_of_a_message_fetched_but_never_opened_acknowledges_it_first(
        stack: DevStack, holder: HolderFactory, audit: Audit) -> None:
    th = await holder("TH-AHTD")
    mid = await _send_report(th)
    await _delivered(stack, audit, mid)
    used = await orcon(stack, "use", mid, "--as", "KH-AHTJP",
                       "--purpose", "smuggling_of_migrants")
    assert used.exit_code == 0, used.output
    events = await audit(stack, lambda ev: _acked(ev, mid, "KH-AHTJP"))
    acked = [i for i, e in enumerate(events) if e.type is EventType.ACKNOWLEDGED
             and e.message_id == mid and e.actor == "KH-AHTJP"]
    used_at = [i for i, e in enumerate(events) if e.type is EventType.USE_DECLARED
               and e.message_id == mid]
    assert acked and used_at, [e.type for e in events]
    inbox = await orcon(stack, "inbox", "--as", "KH-AHTJP", "--json", "--wait", "0.5")
    assert inbox.exit_code == 0 and inbox.output.strip() == "[]", inbox.output


async def test_alerts_watch_acknowledges_what_it_shows_and_counts_the_rest(
        stack: DevStack, holder: HolderFactory, audit: Audit, sync_until: Any) -> None:
    th, blo = await holder("TH-AHTD"), await holder("TH-BLO-CHIANGSAEN")
    alert = await th.send(examples.arrest_alert(), category=Category.GROUPS,
                          level=Level.RESTRICTED, to=["TH-BLO-CHIANGSAEN"])
    report = await _send_report(th, "TH-BLO-CHIANGSAEN")
    await _delivered(stack, audit, report)
    console = Console(width=250, record=True)
    stop = asyncio.Event()
    task = asyncio.create_task(watch(blo, console, stop, poll=0.3))
    try:
        await audit(stack, lambda ev: _acked(ev, alert.id, "TH-BLO-CHIANGSAEN"),
                    timeout=10)
    finally:
        stop.set()
        await task
    text = console.export_text()
    assert alert.id in text
    assert "1 other new message" in text and "orcon inbox" in text, text
    unread = [r.id for r in blo.unread()]
    assert unread == [report]
