"""Issue 15: the originator amends (tightens only) or withdraws a message it sent; holders'
stores apply the change on their next sync and answer with signed receipts; the audit
report shows who complied and who has not. Real nats-server and broker (DevStack)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from broker.audit.events import AuditEvent
from broker.audit.report import analyse
from broker.hosting.stack import DevStack
from clients.sdk.holder import Holder, LifecycleError, UseRefused
from policies.acts import proof_of
from schemas import Amendment, Category, Level, Purpose, Restrictions, decode_envelope, examples
from schemas.acts import Act
from schemas.codes import PurgeReason
from schemas.events import EventType

HolderFactory = Callable[[str], Awaitable[Holder]]
Audit = Callable[..., Awaitable[list[AuditEvent]]]
E = EventType


async def _share(th: Holder, holders: list[Holder], sync_until: Any,
                 restrictions: Restrictions) -> str:
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=[h.agency for h in holders],
                         restrictions=restrictions)
    out = await th.wait_outcome(sent.id)
    assert sorted(out.delivered) == sorted(h.agency for h in holders), out
    for h in holders:
        await sync_until(h, lambda r: any(x.id == sent.id for x in r.new))
    return sent.id


def _has(ev: list[AuditEvent], t: EventType, actor: str, **details: str) -> bool:
    return any(e.type is t and e.actor == actor
               and all(e.details.get(k) == v for k, v in details.items()) for e in ev)


async def test_amendment_applies_at_holders_with_signed_receipts_and_report(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Audit) -> None:
    th, kh, vn = await holder("TH-AHTD"), await holder("KH-AHTJP"), await holder("VN-MPS")
    wide = Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS,
                                  Purpose.TRAFFICKING_IN_PERSONS],
                        expires_at=th.now + timedelta(days=30))
    mid = await _share(th, [kh, vn], sync_until, wide)
    tight = msgspec.structs.replace(wide, purposes=[Purpose.SMUGGLING_OF_MIGRANTS],
                                    expires_at=th.now + timedelta(days=2), exclude=["MM"])
    change = await th.amend(mid, tight)
    assert change.kind == "amendment" and sorted(change.recipients) == ["KH-AHTJP", "VN-MPS"]

    # KH syncs (applies, signs a receipt); VN does not sync: not complied.
    await sync_until(kh, lambda r: any(x.id == change.id for x in r.new))
    row = kh.get(mid)
    assert row.restrictions.purposes == [Purpose.SMUGGLING_OF_MIGRANTS]
    assert row.restrictions.exclude == ["MM"]
    assert row.expires_at is not None and row.expires_at <= th.now + timedelta(days=2)
    with pytest.raises(UseRefused) as refused:
        await kh.use(mid, Purpose.TRAFFICKING_IN_PERSONS)
    assert refused.value.rule == "restriction.purpose"

    got = await sync_until(th, lambda r: any(x.kind == "amendment_receipt" for x in r.new))
    receipt = next(x for x in got.new if x.kind == "amendment_receipt")
    assert receipt.sender == "KH-AHTJP" and receipt.header.act is not None
    assert receipt.header.act.request == change.id
    assert [(h, c) for h, c, _ in th.compliance(mid)] == [
        ("KH-AHTJP", change.id), ("VN-MPS", change.id)]
    assert [at is not None for _, _, at in th.compliance(mid)] == [True, False]

    events = await audit(stack, lambda ev: _has(ev, E.AMEND_APPLIED, "KH-AHTJP"))
    assert _has(events, E.AMENDED, "TH-AHTD", change=change.id)
    assert _has(events, E.AMEND_APPLIED, "KH-AHTJP", change=change.id)
    a = analyse(events)
    [c] = a.changes
    assert c.change_id == change.id and c.kind == "amendment" and c.message_id == mid
    assert {h: at is not None for h, at in c.holders.items()} == {"KH-AHTJP": True,
                                                                    "VN-MPS": False}


async def test_looser_amendment_is_refused_by_sdk_and_by_broker(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Audit) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    r = Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS], no_onward_dissemination=True,
                     expires_at=th.now + timedelta(days=5))
    mid = await _share(th, [kh], sync_until, r)
    looser = msgspec.structs.replace(r, expires_at=th.now + timedelta(days=50),
                                     no_onward_dissemination=False)
    with pytest.raises(LifecycleError) as sdk:
        await th.amend(mid, looser)
    assert sdk.value.rule == "amend.loosen"
    assert "expires_at" in sdk.value.reason and "no_onward_dissemination" in sdk.value.reason
    # A client that skips its own check: the broker refuses, logs, delivers nothing.
    with pytest.raises(LifecycleError) as broker:
        await th.amend(mid, looser, check=False)
    assert broker.value.rule == "amend.loosen"
    events = await audit(stack, lambda ev: _has(ev, E.AMEND_REFUSED, "TH-AHTD"))
    refusal = next(e for e in events if e.type is E.AMEND_REFUSED)
    assert refusal.rule == "amend.loosen" and refusal.message_id == mid
    assert not any(e.type is E.DELIVERED and e.details.get("kind") == "amendment"
                   for e in events)
    # A tighter amendment after a tighter one must not loosen the first.
    first = msgspec.structs.replace(r, expires_at=th.now + timedelta(days=2))
    await th.amend(mid, first)
    with pytest.raises(LifecycleError) as again:
        await th.amend(mid, r, check=False)  # tighter than the original, looser than first
    assert again.value.rule == "amend.loosen"


async def test_only_the_originator_amends(stack: DevStack, holder: HolderFactory,
                                         sync_until: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    r = Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS])
    mid = await _share(th, [kh], sync_until, r)
    with pytest.raises(LifecycleError) as sdk:
        await kh.amend(mid, msgspec.structs.replace(r, no_evidential_use=True))
    assert sdk.value.rule == "amend.not-originator"
    with pytest.raises(LifecycleError) as broker:
        await kh.withdraw(mid, "not mine to withdraw", check=False)
    assert broker.value.rule == "rejected" and "amend.not-originator" in broker.value.reason


async def test_withdrawal_destroys_copies_with_signed_receipts(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Audit) -> None:
    th, kh, vn = await holder("TH-AHTD"), await holder("KH-AHTJP"), await holder("VN-MPS")
    mid = await _share(th, [kh, vn], sync_until,
                       Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS]))
    change = await th.withdraw(mid, "source compromised")
    assert change.kind == "withdrawal"
    await sync_until(kh, lambda r: any(x.id == change.id for x in r.new))
    assert kh.store.get(mid) is None
    with pytest.raises(LifecycleError) as gone:
        await kh.use(mid, Purpose.SMUGGLING_OF_MIGRANTS)
    assert gone.value.rule == "store.unknown"
    events = await audit(stack, lambda ev: _has(ev, E.PURGED, "KH-AHTJP", change=change.id))
    purged = next(e for e in events if e.type is E.PURGED and e.actor == "KH-AHTJP")
    assert purged.details["reason"] == str(PurgeReason.ORIGINATOR_REQUEST)
    assert _has(events, E.WITHDRAWN, "TH-AHTD", change=change.id)
    [c] = analyse(events).changes
    assert c.kind == "withdrawal"
    assert {h: at is not None for h, at in c.holders.items()} == {"KH-AHTJP": True,
                                                                    "VN-MPS": False}


async def test_forwarded_copies_are_amended_and_withdrawn_too(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Audit) -> None:
    """Every holder: the third party a holder forwarded to (the originator learnt of it
    from the signed forward notice) is amended and asked to destroy its copy as well;
    the forwarder's own tightening is kept (an amendment never loosens it)."""
    th, kh, vn = await holder("TH-AHTD"), await holder("KH-AHTJP"), await holder("VN-MPS")
    base = Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS, Purpose.INVESTIGATION])
    mid = await _share(th, [kh], sync_until, base)
    by_kh = msgspec.structs.replace(base, exclude=["CN"])
    await kh.forward(mid, "VN-MPS", restrictions=by_kh)
    await sync_until(vn, lambda r: any(x.id == mid for x in r.new))
    await sync_until(th, lambda r: any(x.kind == "forward_notice" for x in r.new))

    change = await th.amend(mid, msgspec.structs.replace(
        base, purposes=[Purpose.SMUGGLING_OF_MIGRANTS], no_evidential_use=True))
    assert change.recipients == ["KH-AHTJP", "VN-MPS"]
    await sync_until(vn, lambda r: any(x.id == change.id for x in r.new))
    r = vn.get(mid).restrictions
    assert r.purposes == [Purpose.SMUGGLING_OF_MIGRANTS] and r.no_evidential_use
    assert r.exclude == ["CN"], "the forwarder's tightening was lost"

    gone = await th.withdraw(mid, "source compromised")
    assert gone.recipients == ["KH-AHTJP", "VN-MPS"]
    await sync_until(vn, lambda r: any(x.id == gone.id for x in r.new))
    assert vn.store.get(mid) is None
    events = await audit(stack, lambda ev: _has(ev, E.PURGED, "VN-MPS", change=gone.id)
                         and _has(ev, E.AMEND_APPLIED, "VN-MPS", change=change.id))
    assert _has(events, E.PURGED, "VN-MPS", change=gone.id)
    assert _has(events, E.AMEND_APPLIED, "VN-MPS", change=change.id)


async def test_amendment_to_a_non_holder_is_rejected(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    """The originator cannot use an amendment to show its signed header (ids, recipients,
    restrictions) to an agency that never held the message: the broker rejects it."""
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    r = Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS])
    mid = await _share(th, [kh], sync_until, r)
    row = th.get(mid)
    act = Act(message_id=mid, original=proof_of(decode_envelope(row.record.envelope)),
              restrictions=msgspec.structs.replace(r, no_evidential_use=True))
    sent = await th.client.send(
        Amendment(message_id=mid, amended_at=th.now), category=row.header.category,
        level=row.header.level, to=["KH-AHTJP", "VN-MPS"], in_reply_to=mid, act=act,
        resolve=False)
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.status == "rejected" and "act.addressee" in (outcome.error or "")
    assert "VN-MPS" in (outcome.error or "")
