"""The auditor's path end to end: traffic through a real broker, `fetch` with the
auditor's read-only credentials, offline verification of the downloaded bundle."""

from __future__ import annotations

import asyncio
from pathlib import Path

from broker.audit.events import decode_record
from broker.audit.store import iter_entries
from broker.audit.verify import verify_bundle
from broker.hosting.stack import DevStack
from clients.sdk.auditor import fetch_bundle
from schemas import Category, Level, Restrictions, examples
from schemas.events import EventType


async def test_fetched_log_verifies_and_records_every_decision(
    stack: DevStack, agency, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    th = await agency("TH-AHTD")
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, restrictions=Restrictions(exclude=["MM"]),
                         to=["KH-AHTJP", "MM-ATIPD"], resolve=False)
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.delivered == ["KH-AHTJP"]
    assert stack.audit is not None
    for _ in range(100):  # the sequencer appends asynchronously
        if stack.audit.size >= 3:
            break
        await asyncio.sleep(0.05)
    assert stack.connection is not None
    n, heads = await fetch_bundle(stack.connection, "XX-AUDIT", tmp_path / "bundle")
    assert n >= 3 and heads >= 1
    report = verify_bundle(tmp_path / "bundle")
    assert report.ok, report.summary()
    events = [decode_record(e).event for e in iter_entries(tmp_path / "bundle")]
    mine = [(e.type, e.counterpart, e.rule) for e in events if e.message_id == sent.header.id]
    assert (EventType.SUBMITTED, None, None) in mine
    assert (EventType.DELIVERED, "KH-AHTJP", "basis.COMMIT-MOU-2004") in mine
    assert (EventType.REFUSED, "MM-ATIPD", "restriction.exclude") in mine
    # Metadata only: the body's words never reach the log.
    raw = (tmp_path / "bundle" / "entries.bin").read_bytes()
    assert b"Tachileik" not in raw


async def test_tampered_bundle_names_the_first_bad_entry(
    stack: DevStack, agency, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    th = await agency("TH-AHTD")
    for _ in range(3):
        sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["KH-AHTJP"])
        await th.wait_outcome(sent.header.id)
    assert stack.connection is not None and stack.audit is not None
    for _ in range(100):
        if stack.audit.size >= 6:
            break
        await asyncio.sleep(0.05)
    await fetch_bundle(stack.connection, "XX-AUDIT", tmp_path / "b")
    path = tmp_path / "b" / "entries.bin"
    data = bytearray(path.read_bytes())
    i = data.index(b"KH-AHTJP")  # inside some entry after the first
    data[i] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_bundle(tmp_path / "b")
    assert not report.ok
    assert report.first_bad is not None
