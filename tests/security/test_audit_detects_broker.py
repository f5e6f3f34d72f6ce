"""A compromised broker is caught by auditors, from the log.

Signatures stop a broker from forging, adding stanzas or recipients, or loosening
restrictions (tests/integration/test_tamper.py); what a signature cannot stop is a
broker that hands a genuine, signed envelope to a recipient the policy refused (the
sender sealed to it, the broker's re-check refused it). That is caught by
reconciliation: every delivery a recipient received must have a matching `delivered`
event in the verified log. And a log entry rewritten after the fact, even with the
chain recomputed, is caught by `broker.audit.verify` against the signed tree heads.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from pathlib import Path

import msgspec

import schemas
from broker.audit.events import LogRecord, decode_record, encode_record
from broker.audit.merkle import leaf_hash
from broker.audit.store import MAGIC, iter_entries
from broker.audit.verify import MODIFIED, verify_bundle
from broker.hosting.stack import DevStack
from clients.sdk.auditor import fetch_bundle
from keys.envelope import for_recipient, seal
from schemas import Category, Level, Restrictions, examples
from schemas.events import EventType
from tests.support.harness import Collected, collect
from transport import subjects as s


def reconcile(receipts: Iterable[tuple[str, str]], bundle: Path) -> list[tuple[str, str]]:
    """(message id, recipient) pairs a recipient received that the verified log does not
    record as `delivered`. The check an auditor runs against recipients' receipts."""
    report = verify_bundle(bundle)
    assert report.ok, report.summary()
    logged = {
        (ev.message_id, ev.counterpart)
        for ev in (decode_record(e).event for e in iter_entries(bundle))
        if ev.type == EventType.DELIVERED
    }
    return sorted(set(receipts) - logged)


async def _fetch(stack: DevStack, out: Path, min_size: int) -> None:
    assert stack.audit is not None and stack.connection is not None
    for _ in range(200):  # the sequencer appends asynchronously
        if stack.audit.size >= min_size:
            break
        await asyncio.sleep(0.05)
    await fetch_bundle(stack.connection, "XX-AUDIT", out)


async def test_delivery_without_delivered_event_is_caught(
    stack: DevStack, agency, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    th, kh, mm = await agency("TH-AHTD"), await agency("KH-AHTJP"), await agency("MM-ATIPD")
    # The sender seals to KH and MM but excludes Myanmar; the honest broker refuses MM.
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, restrictions=Restrictions(exclude=["MM"]),
                         to=["KH-AHTJP", "MM-ATIPD"], resolve=False)
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.delivered == ["KH-AHTJP"]
    got_kh = await collect(kh, {sent.header.id}, Collected(), deadline_s=10)
    assert got_kh.ids == [sent.header.id]

    # The compromised broker re-creates MM's copy from the submission it saw.
    b = examples.mekong_route_report()
    header = msgspec.structs.replace(sent.header)
    now = th.clock()
    recipients = [r for a in header.recipients for r in th.directory.recipients_for(a, now)]
    env = seal(schemas.encode(header), schemas.encode(b), recipients, th.identity)
    evil = await stack.broker_connection("evil")
    try:
        await evil.jetstream().publish(
            s.deliver("MM-ATIPD"), schemas.encode_envelope(for_recipient(env, "MM-ATIPD")),
            headers={"Nats-Msg-Id": f"{header.id}:MM-ATIPD:evil"})
    finally:
        await evil.close()
    got_mm = await collect(mm, {header.id}, Collected(), deadline_s=10)
    # The signature is genuine and MM is a signed recipient, so the SDK alone cannot
    # tell (it does not re-run the federation policy); the log can.
    receipts = [(i, "KH-AHTJP") for i in got_kh.ids] + [(i, "MM-ATIPD") for i in got_mm.ids]

    await _fetch(stack, tmp_path / "bundle", 3)
    unlogged = reconcile(receipts, tmp_path / "bundle")
    assert (sent.header.id, "KH-AHTJP") not in unlogged  # the honest delivery reconciles
    assert got_mm.ids or got_mm.rejected, "the injected delivery never reached MM"
    # Whatever the SDK did with it, a delivery the log does not record is flagged.
    assert unlogged == [(sent.header.id, "MM-ATIPD")] if got_mm.ids else unlogged == []
    events = [decode_record(e).event for e in iter_entries(tmp_path / "bundle")]
    assert any(e.type == EventType.REFUSED and e.counterpart == "MM-ATIPD"
               and e.rule == "restriction.exclude" for e in events)


def _rewrite(bundle: Path, position: int, new_event_type: EventType) -> None:
    """Rewrite one entry and recompute every later record's chain link, as a log
    operator with write access to the stored entries (not to the log key) could."""
    entries = list(iter_entries(bundle))
    rec = decode_record(entries[position])
    entries[position] = encode_record(LogRecord(
        rec.index, rec.prev, msgspec.structs.replace(rec.event, type=new_event_type)))
    for i in range(position + 1, len(entries)):
        r = decode_record(entries[i])
        entries[i] = encode_record(LogRecord(r.index, leaf_hash(entries[i - 1]), r.event))
    with (bundle / "entries.bin").open("wb") as f:
        f.write(MAGIC)
        for e in entries:
            f.write(struct.pack(">I", len(e)) + e)


async def test_rewritten_audit_entry_is_caught(
    stack: DevStack, agency, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    th = await agency("TH-AHTD")
    ids = []
    for _ in range(3):
        sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, restrictions=Restrictions(exclude=["MM"]),
                             to=["KH-AHTJP", "MM-ATIPD"], resolve=False)
        ids.append(sent.header.id)
        await th.wait_outcome(sent.header.id)
    await _fetch(stack, tmp_path / "b", 9)
    assert verify_bundle(tmp_path / "b").ok
    records = [decode_record(e) for e in iter_entries(tmp_path / "b")]
    # Turn the first refusal into a delivery: the lie a broker would need to cover an
    # unlawful delivery.
    pos = next(i for i, r in enumerate(records) if r.event.type == EventType.REFUSED)
    _rewrite(tmp_path / "b", pos, EventType.DELIVERED)
    report = verify_bundle(tmp_path / "b")
    assert not report.ok
    assert report.first_problem is not None and report.first_problem.kind == MODIFIED
    assert report.first_bad is not None and report.first_bad <= pos
