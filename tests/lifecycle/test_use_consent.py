"""Use and consent against a real nats-server: a use the restrictions forbid is refused
(by the SDK, and by the broker when the SDK check is skipped), then allowed once the
originator grants consent for exactly that; every act reaches the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from broker.hosting.stack import DevStack
from clients.sdk.holder import Holder, UseRefused
from schemas import Category, Level, Purpose, Restrictions, examples
from schemas.acts import Act
from schemas.codes import ConsentScope
from schemas.events import EventType

HolderFactory = Callable[[str], Awaitable[Holder]]

H1 = Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS, Purpose.INVESTIGATION,
                            Purpose.PROSECUTION], no_evidential_use=True)


async def test_use_refused_then_allowed_after_consent(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, restrictions=H1, to=["KH-AHTJP"])
    await sync_until(kh, lambda r: any(x.id == info.id for x in r.new))
    row = await kh.open(info.id)  # first open: signed acknowledgment
    assert row.acked

    with pytest.raises(UseRefused) as exc:
        await kh.use(info.id, Purpose.TRAFFICKING_IN_PERSONS)
    assert exc.value.rule == "restriction.purpose"
    with pytest.raises(UseRefused) as exc:
        await kh.use(info.id, Purpose.PROSECUTION, evidential=True)
    assert exc.value.rule == "restriction.no_evidential_use"
    assert "TH-AHTD" in exc.value.reason
    # Without the SDK's check the broker refuses it on its own, and logs it.
    with pytest.raises(UseRefused) as exc:
        await kh.use(info.id, Purpose.PROSECUTION, evidential=True, check=False)
    assert exc.value.rule == "restriction.no_evidential_use"

    analysis = await kh.use(info.id, Purpose.INVESTIGATION, note="cross-checked")
    req = await kh.request_consent(info.id, ConsentScope.EVIDENTIAL_USE,
                                   justification="Needed as evidence at trial.")
    await sync_until(th, lambda r: any(x.id == req.id for x in r.new))
    decision = await th.grant(req.id, conditions=["Disclose only to the trial court."])
    await sync_until(kh, lambda r: any(x.id == decision.id for x in r.new))

    used = await kh.use(info.id, Purpose.PROSECUTION, evidential=True)
    assert used.act is not None and used.act.consent is not None

    def done(evs: list) -> bool:  # type: ignore[type-arg]
        return any(e.type == EventType.USE_DECLARED and e.details.get("evidential") == "true"
                   for e in evs)

    events = [e for e in await audit(stack, done) if e.message_id == info.id]
    kinds = [(e.type, e.actor) for e in events]
    assert (EventType.ACKNOWLEDGED, "KH-AHTJP") in kinds
    assert (EventType.CONSENT_REQUESTED, "KH-AHTJP") in kinds
    assert (EventType.CONSENT_GRANTED, "TH-AHTD") in kinds
    refused = [e for e in events if e.type == EventType.USE_REFUSED]
    assert [e.rule for e in refused] == ["restriction.no_evidential_use"]
    declared = [e for e in events if e.type == EventType.USE_DECLARED]
    assert [(e.details["purpose"], e.details["evidential"]) for e in declared] == [
        ("investigation", "false"), ("prosecution", "true")]
    assert declared[1].details["consent"] == decision.id
    assert "consent" not in declared[0].details
    assert analysis.id != used.id


async def test_consent_for_one_holder_does_not_cover_another(
        holder: HolderFactory, sync_until: Any) -> None:
    """A grant to KH for evidential use is no grant to VN, even if VN presents it."""
    th, kh, vn = await holder("TH-AHTD"), await holder("KH-AHTJP"), await holder("VN-MPS")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, restrictions=H1,
                         to=["KH-AHTJP", "VN-MPS"])
    await sync_until(kh, lambda r: any(x.id == info.id for x in r.new))
    await sync_until(vn, lambda r: any(x.id == info.id for x in r.new))
    req = await kh.request_consent(info.id, ConsentScope.EVIDENTIAL_USE,
                                   justification="Trial.")
    await sync_until(th, lambda r: any(x.id == req.id for x in r.new))
    decision = await th.grant(req.id)
    got = await sync_until(kh, lambda r: any(x.id == decision.id for x in r.new))
    grant = kh.consents(info.id, ConsentScope.EVIDENTIAL_USE, "KH-AHTJP")
    assert len(grant) == 1 and got.new
    # VN copies KH's grant into its own declaration: the broker refuses it.
    vn_row = vn.get(info.id)
    _, original, _ = vn._original(vn_row)
    body = msgspec.structs.replace(examples.use_declaration(), message_id=info.id)
    act = Act(message_id=info.id, original=original, use=body.use, purpose=body.purpose,
              evidential=True, consent=grant[0])
    _, outcome = await vn._act(vn_row, body, act)
    assert outcome is not None and outcome.status == "refused"
    assert outcome.refused[0].rule == "consent.scope"
