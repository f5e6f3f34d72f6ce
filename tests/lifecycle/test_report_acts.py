"""Issue 15 item 6 (second half): the audit report tells acts from deliveries. An
acknowledgment (or any life-cycle act) travels as a message and is logged `delivered`
to the originator; it is not information awaiting acknowledgment. Real stack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from broker.audit.events import AuditEvent
from broker.audit.report import analyse
from broker.hosting.stack import DevStack
from clients.sdk.holder import Holder
from schemas import Category, Level, Purpose, Restrictions, examples
from schemas.events import EventType

HolderFactory = Callable[[str], Awaitable[Holder]]
Audit = Callable[..., Awaitable[list[AuditEvent]]]


async def test_acknowledged_exchange_has_no_unacknowledged_delivery(
        stack: DevStack, holder: HolderFactory, audit: Audit, sync_until: object) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=["KH-AHTJP"],
                         restrictions=Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS]))
    got = await sync_until(kh, lambda r: any(x.id == sent.id for x in r.new))  # type: ignore[operator]
    assert got.new
    await kh.open(sent.id)
    await kh.use(sent.id, Purpose.SMUGGLING_OF_MIGRANTS)

    def done(ev: list[AuditEvent]) -> bool:
        kinds = {e.details.get("kind") for e in ev if e.type is EventType.DELIVERED}
        return {"acknowledgment", "use_declaration"} <= kinds

    events = await audit(stack, done)
    assert done(events), [(e.type, e.details.get("kind")) for e in events]
    a = analyse(events)
    assert [(d.message_id, d.recipient) for d in a.deliveries] == [(sent.id, "KH-AHTJP")]
    assert a.unacknowledged == [], a.unacknowledged
    assert a.acts_delivered == {"acknowledgment": 1, "use_declaration": 1}
    assert a.flows == {("TH", "KH"): 1}
