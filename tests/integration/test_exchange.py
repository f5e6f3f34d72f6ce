"""The first real exchange (issue 2), end to end against a real nats-server: a
permitted agency receives and decrypts; excluded, under-cleared and no-basis agencies
receive nothing; the sender learns every refusal and its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import schemas
from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from schemas import Category, Level, Restrictions


def report(text: str = "Boats leave Chiang Saen at night for Ton Pheung.") -> schemas.IntelReport:
    return schemas.IntelReport(
        title="Mekong crossing", narrative=schemas.Narrative(text=text, lang="en")
    )


async def drain_inbox(client: AgencyClient, timeout: float = 0.5) -> list[schemas.Header]:
    batch = await client.inbox(timeout=timeout)
    return [m.header for m in batch.messages]


async def test_permitted_agency_receives_and_decrypts(agency) -> None:  # type: ignore[no-untyped-def]
    th, kh = await agency("TH-AHTD"), await agency("KH-AHTJP")
    body = report()
    sent = await th.send(body, category=Category.ROUTES, level=Level.CONFIDENTIAL,
                         to=["KH-AHTJP"])
    assert sent.submitted and sent.sealed_to == ["KH-AHTJP"]
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.status == "routed"
    assert outcome.delivered == ["KH-AHTJP"]
    batch = await kh.inbox(timeout=5)
    assert [m.header.id for m in batch.messages] == [sent.header.id]
    assert batch.messages[0].body == body
    assert batch.messages[0].header.sender == "TH-AHTD"


async def test_broker_refuses_excluded_undercleared_auditor_and_no_basis(agency) -> None:  # type: ignore[no-untyped-def]
    """resolve=False: the sender seals to everyone it names, so every refusal below is
    the broker's own decision, not the sender's courtesy."""
    th = await agency("TH-AHTD")
    sent = await th.send(
        report(), category=Category.ROUTES, level=Level.CONFIDENTIAL,
        restrictions=Restrictions(exclude=["MM"]),
        to=["KH-AHTJP", "LA-MPS", "MM-ATIPD", "XX-AUDIT"], resolve=False,
    )
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.delivered == ["KH-AHTJP"]
    rules = {r.recipient: r.rule for r in outcome.refused}
    assert rules == {
        "LA-MPS": "restriction.clearance",
        "MM-ATIPD": "restriction.exclude",
        "XX-AUDIT": "role.auditor",
    }
    reasons = {r.recipient: r.reason for r in outcome.refused}
    assert "excluded by the sender" in reasons["MM-ATIPD"] and "MM" in reasons["MM-ATIPD"]
    assert "RESTRICTED" in reasons["LA-MPS"] and "CONFIDENTIAL" in reasons["LA-MPS"]

    for refused in ("LA-MPS", "MM-ATIPD"):
        assert await drain_inbox(await agency(refused)) == []
    assert [h.id for h in await drain_inbox(await agency("KH-AHTJP"), 5)] == [sent.header.id]


async def test_no_legal_basis_is_refused_and_explained(agency) -> None:  # type: ignore[no-untyped-def]
    au = await agency("AU-AFP-LO")
    sent = await au.send(report(), category=Category.DOCUMENTS, level=Level.RESTRICTED,
                         to=["CN-MPS", "TH-AHTD"])
    refused = {r.recipient: r for r in sent.refused}
    assert set(refused) == {"CN-MPS"}
    assert refused["CN-MPS"].rule == "default.no-basis"
    assert "no legal basis" in refused["CN-MPS"].reason
    assert sent.sealed_to == ["TH-AHTD"]
    outcome = await au.wait_outcome(sent.header.id)
    assert outcome.delivered == ["TH-AHTD"]
    assert await drain_inbox(await agency("CN-MPS")) == []


async def test_audience_is_resolved_and_refusals_reported(agency) -> None:  # type: ignore[no-untyped-def]
    th = await agency("TH-AHTD")
    sent = await th.send(report(), category=Category.ROUTES, level=Level.CONFIDENTIAL,
                         restrictions=Restrictions(exclude=["MM"]), audience=["COMMIT"])
    assert "KH-AHTJP" in sent.sealed_to and "VN-MPS" in sent.sealed_to
    assert "MM-ATIPD" not in sent.sealed_to and "TH-AHTD" not in sent.sealed_to
    rules = {r.recipient: r.rule for r in sent.refused}
    assert rules["MM-ATIPD"] == "restriction.exclude"
    assert rules["LA-MPS"] == "restriction.clearance"
    outcome = await th.wait_outcome(sent.header.id)
    assert sorted(outcome.delivered) == sorted(sent.sealed_to)


async def test_expired_message_is_not_delivered(stack: DevStack, agency) -> None:  # type: ignore[no-untyped-def]
    th = await agency("TH-AHTD")
    later = datetime.now(UTC) + timedelta(days=10)
    # The broker's clock is past the use window when it routes.
    for b in stack.brokers:
        b.config.clock = lambda: later + timedelta(seconds=1)
        # The broker accepts a message created 10 days before it routes it (by default
        # it refuses one older than minutes: test_dedupe_and_time.py).
        b.config.created_at_max_age = timedelta(days=11)
    sent = await th.send(report(), category=Category.ROUTES, level=Level.RESTRICTED,
                         restrictions=Restrictions(expires_at=later), to=["KH-AHTJP"],
                         resolve=False)
    assert sent.submitted
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.delivered == []
    assert [r.rule for r in outcome.refused] == ["restriction.expires_at"]
