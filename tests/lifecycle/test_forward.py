"""Forwarding against a real nats-server: refused under H2 (no onward dissemination),
allowed with the originator's consent to exactly the named third party and no other;
a forwarder cannot loosen the originator's restrictions, neither in its own notice nor
by editing the signed header; every decision is in the audit log with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from broker.hosting.stack import DevStack
from clients.sdk.holder import ForwardRefused, Holder
from keys.envelope import add_stanzas, seal, unwrap_content_key
from policies.acts import proof_of
from schemas import Category, Level, Purpose, Restrictions, examples
from schemas.acts import FORWARD_TAG, Act, ForwardSubmission, encode_forward
from schemas.codes import ConsentScope
from schemas.events import EventType
from transport import subjects as s

HolderFactory = Callable[[str], Awaitable[Holder]]
H2 = Restrictions(no_onward_dissemination=True, no_evidential_use=True,
                  purposes=[Purpose.SMUGGLING_OF_MIGRANTS, Purpose.INVESTIGATION])


async def _shared(th: Holder, kh: Holder, sync_until: Any) -> str:
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, restrictions=H2, to=["KH-AHTJP"])
    await sync_until(kh, lambda r: any(x.id == info.id for x in r.new))
    return info.id


async def test_forward_refused_under_h2_then_allowed_to_exactly_the_consented_party(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    vn, mm = await holder("VN-MPS"), await holder("MM-ATIPD")
    mid = await _shared(th, kh, sync_until)

    with pytest.raises(ForwardRefused) as exc:
        await kh.forward(mid, "VN-MPS")
    assert exc.value.rule == "restriction.no_onward_dissemination"
    assert "TH-AHTD" in exc.value.reason and "VN-MPS" in exc.value.reason

    req = await kh.request_consent(mid, ConsentScope.ONWARD_DISSEMINATION, to="VN-MPS",
                                   justification="VN holds the other end of the route.")
    await sync_until(th, lambda r: any(x.id == req.id for x in r.new))
    decision = await th.grant(req.id)
    await sync_until(kh, lambda r: any(x.id == decision.id for x in r.new))

    outcome = await kh.forward(mid, "VN-MPS")
    assert "VN-MPS" in outcome.delivered
    got = await sync_until(vn, lambda r: any(x.id == mid for x in r.new))
    row = next(x for x in got.new if x.id == mid)
    assert row.body == examples.mekong_route_report()
    assert row.header.sender == "TH-AHTD"  # the originator's signed header, unchanged
    assert row.restrictions == H2
    # The third party's own use is checked against the restrictions it received.
    await vn.use(mid, Purpose.INVESTIGATION)

    # The grant names VN-MPS: it does not cover MM-ATIPD, even when presented.
    grant = kh.consents(mid, ConsentScope.ONWARD_DISSEMINATION, "VN-MPS")[0]
    with pytest.raises(ForwardRefused) as exc:
        await kh.forward(mid, "MM-ATIPD", consent=grant)
    assert exc.value.rule == "consent.scope"
    with pytest.raises(ForwardRefused) as exc:
        await kh.forward(mid, "MM-ATIPD")
    assert exc.value.rule == "restriction.no_onward_dissemination"
    assert (await mm.sync(timeout=0.5)).new == []

    def done(evs: list[Any]) -> bool:
        return sum(e.type == EventType.FORWARD_REFUSED for e in evs) >= 3 and any(
            e.type == EventType.USE_DECLARED and e.actor == "VN-MPS" for e in evs)

    events = [e for e in await audit(stack, done) if e.message_id == mid]
    fwd = [(e.type, e.counterpart, e.rule) for e in events
           if e.type in (EventType.FORWARDED, EventType.FORWARD_REFUSED)]
    assert fwd == [
        (EventType.FORWARD_REFUSED, "VN-MPS", "restriction.no_onward_dissemination"),
        (EventType.FORWARDED, "VN-MPS", "basis.COMMIT-MOU-2004"),
        (EventType.FORWARD_REFUSED, "MM-ATIPD", "consent.scope"),
        (EventType.FORWARD_REFUSED, "MM-ATIPD", "restriction.no_onward_dissemination"),
    ]
    forwarded = next(e for e in events if e.type == EventType.FORWARDED)
    assert forwarded.details["consent"] == decision.id
    assert forwarded.details["originator"] == "TH-AHTD" and forwarded.actor == "KH-AHTJP"


async def test_forwarder_cannot_loosen_restrictions(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    th, kh, vn = await holder("TH-AHTD"), await holder("KH-AHTJP"), await holder("VN-MPS")
    mid = await _shared(th, kh, sync_until)
    req = await kh.request_consent(mid, ConsentScope.ONWARD_DISSEMINATION, to="VN-MPS",
                                   justification="Route continues into VN.")
    await sync_until(th, lambda r: any(x.id == req.id for x in r.new))
    decision = await th.grant(req.id)
    await sync_until(kh, lambda r: any(x.id == decision.id for x in r.new))
    looser = msgspec.structs.replace(H2, no_evidential_use=False, purposes=[])

    # 1. In the forwarder's own notice: the SDK refuses, and so does the broker.
    with pytest.raises(ForwardRefused) as exc:
        await kh.forward(mid, "VN-MPS", restrictions=looser)
    assert exc.value.rule == "forward.loosen"
    with pytest.raises(ForwardRefused) as exc:
        await kh.forward(mid, "VN-MPS", restrictions=looser, check=False)
    assert exc.value.rule == "forward.loosen"
    assert "no_evidential_use" in exc.value.reason and "purposes" in exc.value.reason

    # 2. By editing the originator's signed header: the signature no longer verifies.
    row = kh.get(mid)
    env = msgspec.msgpack.decode(row.record.envelope, type=__import__("schemas").Envelope)
    header = row.header
    edited = msgspec.structs.replace(header, restrictions=looser)
    import schemas as sc

    c = kh.client
    now = kh.now
    signer = c.directory.signing_key("TH-AHTD", header.sender_key, now,
                                     created_at=header.created_at)
    key = unwrap_content_key(env, c.identity, signer, now=now)
    forged = add_stanzas(msgspec.structs.replace(env, header=sc.encode(edited), stanzas=[]),
                         key, c.directory.recipients_for("VN-MPS", now))
    grant = kh.consents(mid, ConsentScope.ONWARD_DISSEMINATION, "VN-MPS")[0]
    notice_body = sc.ForwardNotice(message_id=mid, forwarded_to=["VN-MPS"], forwarded_at=now)
    act = Act(message_id=mid, original=proof_of(forged), party="VN-MPS", consent=grant)
    draft = c.draft(notice_body, category=header.category, level=header.level,
                    to=["TH-AHTD"], in_reply_to=mid, act=act)
    notice = seal(sc.encode(draft), sc.encode(notice_body),
                  c.directory.recipients_for("TH-AHTD", now), c.identity)
    await c.js.publish(s.submit("KH-AHTJP"), encode_forward(ForwardSubmission(
        tag=FORWARD_TAG, notice=sc.encode_envelope(notice),
        original=sc.encode_envelope(forged))), headers={"Nats-Msg-Id": draft.id})
    outcome = await kh.wait_outcome(draft.id)
    assert outcome.status == "rejected"
    assert outcome.error is not None and outcome.error.startswith("act.original")
    assert (await vn.sync(timeout=0.5)).new == []

    # The honest forward with the same consent still goes through, unchanged.
    tighter = msgspec.structs.replace(H2, not_to_suspects=True)
    assert "VN-MPS" in (await kh.forward(mid, "VN-MPS", restrictions=tighter)).delivered
    got = await sync_until(vn, lambda r: any(x.id == mid for x in r.new))
    assert got.new[0].restrictions == tighter
